//! Transition plans: the hops one write takes a row through, checked against the
//! state machine before any SQL runs. The audit writers (SQLite's triggers, the
//! PostgreSQL statements themselves) turn a plan's intermediate hops
//! (`transition_path`) and its final hop (`state`, `transition_event`) into audit rows.

use crate::state::{InvalidTransition, StepEvent, StepState, TaskEvent, TaskState};
use serde_json::{json, Value};

/// The event name written for a row's first audit entry (entering `pending`).
pub const CREATE_EVENT: &str = "create";

/// A checked sequence of (event, to-state) hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionPlan {
    /// The state the row must be in for the write to apply (None for an insert).
    pub from: Option<&'static str>,
    hops: Vec<(&'static str, &'static str)>,
}

impl TransitionPlan {
    /// A plan for a step event sequence from `from`.
    pub fn step(from: StepState, events: &[StepEvent]) -> Result<Self, InvalidTransition> {
        let hops = from
            .walk(events)?
            .into_iter()
            .map(|(e, s)| (e.as_str(), s.as_str()))
            .collect();
        Ok(Self {
            from: Some(from.as_str()),
            hops,
        })
    }

    /// A plan for a new step row: created as pending, then `events`.
    pub fn new_step(events: &[StepEvent]) -> Result<Self, InvalidTransition> {
        let mut plan = Self::step(StepState::Pending, events)?;
        plan.hops.insert(0, (CREATE_EVENT, StepState::Pending.as_str()));
        plan.from = None;
        Ok(plan)
    }

    /// A plan for a task event sequence from `from`.
    pub fn task(from: TaskState, events: &[TaskEvent]) -> Result<Self, InvalidTransition> {
        let hops = from
            .walk(events)?
            .into_iter()
            .map(|(e, s)| (e.as_str(), s.as_str()))
            .collect();
        Ok(Self {
            from: Some(from.as_str()),
            hops,
        })
    }

    /// A plan for a new task row: created as pending, then `events`.
    pub fn new_task(events: &[TaskEvent]) -> Result<Self, InvalidTransition> {
        let mut plan = Self::task(TaskState::Pending, events)?;
        plan.hops.insert(0, (CREATE_EVENT, TaskState::Pending.as_str()));
        plan.from = None;
        Ok(plan)
    }

    /// True when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The state the row ends in (the `from` state for an empty plan).
    pub fn final_state(&self) -> &'static str {
        self.hops.last().map(|h| h.1).or(self.from).unwrap_or("pending")
    }

    /// The event of the last hop.
    pub fn final_event(&self) -> &'static str {
        self.hops.last().map(|h| h.0).unwrap_or("none")
    }

    /// The intermediate hops as the JSON the audit writers read, or None when there are none.
    pub fn path_json(&self) -> Option<String> {
        if self.hops.len() < 2 {
            return None;
        }
        let path: Vec<Value> = self.hops[..self.hops.len() - 1]
            .iter()
            .map(|(e, s)| json!({"to": s, "event": e}))
            .collect();
        Some(Value::Array(path).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_plan_records_the_orchestration_hop() {
        let p = TransitionPlan::step(StepState::InProgress, &[StepEvent::Succeed, StepEvent::Complete]).unwrap();
        assert_eq!(p.from, Some("in_progress"));
        assert_eq!(p.final_state(), "complete");
        assert_eq!(p.final_event(), "complete");
        assert_eq!(
            p.path_json().unwrap(),
            r#"[{"event":"succeed","to":"enqueued_for_orchestration"}]"#
        );
    }

    #[test]
    fn a_new_root_step_passes_through_pending() {
        let p = TransitionPlan::new_step(&[StepEvent::Enqueue]).unwrap();
        assert_eq!(p.from, None);
        assert_eq!(p.final_state(), "enqueued");
        assert_eq!(p.path_json().unwrap(), r#"[{"event":"create","to":"pending"}]"#);
    }

    #[test]
    fn an_illegal_plan_is_refused_before_any_sql() {
        assert!(TransitionPlan::step(StepState::Complete, &[StepEvent::Start]).is_err());
        assert!(TransitionPlan::task(TaskState::Pending, &[TaskEvent::AllStepsSuccessful]).is_err());
    }
}
