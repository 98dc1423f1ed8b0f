//! The task and step state machines: which states a task and a step can be in, which
//! events move them, and (for tasks) how a task is judged from its steps' states.
//!
//! Pure and table-driven: no I/O, no clock, no database. Callers (TaskRequest, the
//! worker, the ResultProcessor, the StepEnqueuer, the TaskFinalizer, operator commands)
//! decide *which* event happened; this module only says whether it is legal and where it
//! leads. The store then persists each hop as a compare-and-swap on the row's `state`
//! column with an append-only audit row in the same transaction.
//!
//! - [`step`]: [`StepState`], [`StepEvent`] and the step transition table.
//! - [`task`]: [`TaskState`], [`TaskEvent`], the task transition table, and
//!   [`StepCounts`] / [`evaluate`](task::evaluate) /
//!   [`events_after_evaluation`](task::events_after_evaluation) for the TaskFinalizer.
//!
//! `docs/state-machines.md` draws both machines and explains how they are persisted.

pub mod step;
pub mod task;

#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod task_tests;

pub use step::{StepEvent, StepState};
pub use task::{Evaluation, StepCounts, TaskEvent, TaskState};

/// An event that is not allowed from a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {machine} transition: `{event}` is not allowed from `{from}`")]
pub struct InvalidTransition {
    /// "task" or "step".
    pub machine: &'static str,
    /// The state the event was applied to.
    pub from: &'static str,
    /// The event.
    pub event: &'static str,
}

/// A state name that is not one of the machine's states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {machine} state `{value}`")]
pub struct UnknownState {
    /// "task" or "step".
    pub machine: &'static str,
    /// The text that did not parse.
    pub value: String,
}

/// An event name that is not one of the machine's events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {machine} event `{value}`")]
pub struct UnknownEvent {
    /// "task" or "step".
    pub machine: &'static str,
    /// The text that did not parse.
    pub value: String,
}
