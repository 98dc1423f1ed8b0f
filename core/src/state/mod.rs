//! The task and step state machines (stub: being written). Pure: no I/O.

pub mod step;
pub mod task;

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
