//! TaskFinalizer: what happens to a task when its steps change.
//!
//! The rule ([`plan_after_results`]) is pure: the task's state and its step counts
//! go in, a checked transition plan comes out. The store runs it inside the
//! transaction that applied the step changes and writes the plan as a
//! compare-and-swap on the task's state: when two results finish the same task at
//! once, the second evaluation sees the first's outcome (or loses the swap) and
//! the task is finalized exactly once.

use crate::clock::SharedClock;
use crate::state::task::{evaluate, events_after_evaluation};
use crate::state::{StepCounts, TaskEvent, TaskState};
use crate::store::plan::TransitionPlan;
use crate::store::{SharedStore, StoreError, TaskChange};
use uuid::Uuid;

/// The plan for a new task: straight to `steps_in_process` with its roots
/// enqueued, or to `complete` when it has no steps.
pub fn creation_plan(has_steps: bool) -> TransitionPlan {
    let events: &[TaskEvent] = if has_steps {
        &[TaskEvent::Start, TaskEvent::ReadyStepsFound, TaskEvent::StepsEnqueued]
    } else {
        &[TaskEvent::Start, TaskEvent::NoStepsFound]
    };
    TransitionPlan::new_task(events).expect("creation paths are legal")
}

/// The plan that moves a task in `state` on, given its step counts; None when
/// nothing changes. `newly_enqueued` says successors were just enqueued;
/// `hold_failed` keeps a blocked task for an operator instead of failing it.
pub fn plan_after_results(
    state: TaskState,
    hold_failed: bool,
    counts: &StepCounts,
    newly_enqueued: bool,
) -> Option<TransitionPlan> {
    let events = events_after_evaluation(state, evaluate(counts), newly_enqueued, hold_failed);
    if events.is_empty() {
        return None;
    }
    match TransitionPlan::task(state, &events) {
        // A round trip back to the same state with nothing new enqueued records
        // nothing worth an audit row (e.g. still waiting for a retry).
        Ok(plan) if plan.final_state() == state.as_str() && !newly_enqueued => None,
        Ok(plan) => Some(plan),
        Err(e) => {
            tracing::error!(error = %e, state = %state, "finalizer produced an illegal plan; task left as is");
            None
        }
    }
}

/// Re-evaluates tasks outside result processing (after operator actions, lease
/// expiries, or to settle a task found in an intermediate state).
#[derive(Debug, Clone)]
pub struct TaskFinalizer {
    store: SharedStore,
    clock: SharedClock,
    processor: String,
}

impl TaskFinalizer {
    /// A finalizer writing audit rows as `processor`.
    pub fn new(store: SharedStore, clock: SharedClock, processor: String) -> Self {
        Self {
            store,
            clock,
            processor,
        }
    }

    /// Evaluates the tasks and applies what their steps call for.
    pub async fn finalize(&self, task_uuids: Vec<Uuid>) -> Result<Vec<TaskChange>, StoreError> {
        self.store
            .task_evaluate_many(task_uuids, self.clock.now_ms(), self.processor.clone())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StepState;

    #[test]
    fn a_task_without_steps_is_created_complete() {
        assert_eq!(creation_plan(false).final_state(), "complete");
        assert_eq!(creation_plan(true).final_state(), "steps_in_process");
    }

    #[test]
    fn the_last_successful_step_completes_the_task() {
        let mut c = StepCounts::default();
        c.add(StepState::Complete, 4);
        let plan = plan_after_results(TaskState::StepsInProcess, false, &c, false).unwrap();
        assert_eq!(plan.final_state(), "complete");
        assert!(
            plan_after_results(TaskState::Complete, false, &c, false).is_none(),
            "finalizing twice changes nothing"
        );
    }

    #[test]
    fn a_permanent_failure_fails_the_task_unless_held() {
        let mut c = StepCounts::default();
        c.add(StepState::Complete, 1);
        c.add(StepState::Error, 1);
        c.add(StepState::Pending, 2);
        assert_eq!(
            plan_after_results(TaskState::StepsInProcess, false, &c, false)
                .unwrap()
                .final_state(),
            "error"
        );
        assert_eq!(
            plan_after_results(TaskState::StepsInProcess, true, &c, false)
                .unwrap()
                .final_state(),
            "blocked_by_failures"
        );
        assert!(
            plan_after_results(TaskState::BlockedByFailures, true, &c, false).is_none(),
            "a held task stays put silently"
        );
    }

    #[test]
    fn re_evaluating_a_waiting_task_writes_nothing() {
        let mut c = StepCounts::default();
        c.add(StepState::Complete, 1);
        c.add(StepState::WaitingForRetry, 1);
        assert!(plan_after_results(TaskState::WaitingForRetry, false, &c, false).is_none());
        assert_eq!(
            plan_after_results(TaskState::StepsInProcess, false, &c, false)
                .unwrap()
                .final_state(),
            "waiting_for_retry"
        );
    }
}
