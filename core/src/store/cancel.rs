//! What task cancellation shares across backends: the states `cancel` may leave
//! (taken from the state machines, so the compare-and-swap never allows an illegal
//! move), its audit metadata, and the outcome of each requested task.

use super::params::TaskCancelOutcome;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Task states from which `cancel` is legal.
pub fn cancellable_task_states() -> Vec<&'static str> {
    TaskState::ALL
        .iter()
        .filter(|s| s.apply(TaskEvent::Cancel).is_ok())
        .map(|s| s.as_str())
        .collect()
}

/// Step states from which `cancel` is legal.
pub fn cancellable_step_states() -> Vec<&'static str> {
    StepState::ALL
        .iter()
        .filter(|s| s.apply(StepEvent::Cancel).is_ok())
        .map(|s| s.as_str())
        .collect()
}

/// The audit metadata of a cancellation.
pub fn cancel_metadata(reason: Option<&str>) -> Value {
    json!({ "reason": reason })
}

/// One outcome per requested task, in order, from what the write returned:
/// `cancelled` (task → namespace), steps cancelled per task, and the state of every
/// requested task that exists (read in the same transaction).
pub fn outcomes(
    requested: &[Uuid],
    cancelled: &HashMap<Uuid, String>,
    steps: &HashMap<Uuid, u32>,
    states: &HashMap<Uuid, TaskState>,
) -> Vec<TaskCancelOutcome> {
    requested
        .iter()
        .map(|&task_uuid| match (cancelled.get(&task_uuid), states.get(&task_uuid)) {
            (Some(namespace), _) => TaskCancelOutcome::Cancelled {
                task_uuid,
                namespace: namespace.clone(),
                steps_cancelled: steps.get(&task_uuid).copied().unwrap_or(0),
            },
            (None, Some(&state)) => TaskCancelOutcome::AlreadyFinished { task_uuid, state },
            (None, None) => TaskCancelOutcome::NotFound { task_uuid },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_leaves_every_unfinished_state_and_no_terminal_one() {
        let tasks = cancellable_task_states();
        assert!(tasks.contains(&"blocked_by_failures") && tasks.contains(&"pending"));
        assert!(!tasks.contains(&"complete") && !tasks.contains(&"error") && !tasks.contains(&"cancelled"));
        let steps = cancellable_step_states();
        assert!(steps.contains(&"in_progress") && steps.contains(&"error"));
        assert!(!steps.contains(&"complete") && !steps.contains(&"resolved_manually"));
    }
}
