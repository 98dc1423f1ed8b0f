//! Events: [`EngineEvent`]s describe what the engine did (progress for the CLI,
//! `wait_for_task`), [`WakeHub`] wakes workers after commits, [`domain`] carries
//! domain events (declared by templates or published by handlers), and
//! [`subscriber`] reads durable domain events as a named consumer.

pub mod domain;
pub mod subscriber;
mod wake;

pub use wake::WakeHub;

use crate::state::{StepState, TaskState};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

/// How many engine events a slow subscriber may fall behind before it misses some.
pub const ENGINE_EVENT_CAPACITY: usize = 4096;

/// Something the engine did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A task was created.
    TaskCreated {
        /// The task.
        task_uuid: Uuid,
        /// Its state after creation.
        state: TaskState,
    },
    /// A step was claimed and handed to a handler.
    StepStarted {
        /// The task.
        task_uuid: Uuid,
        /// The step.
        step_uuid: Uuid,
        /// Step name.
        name: String,
        /// Attempt number.
        attempt: u32,
        /// Handler callable.
        handler: String,
    },
    /// A step's attempt was recorded.
    StepFinished {
        /// The task.
        task_uuid: Uuid,
        /// The step.
        step_uuid: Uuid,
        /// Step name.
        name: String,
        /// Attempt number.
        attempt: u32,
        /// The step's state after the attempt.
        state: StepState,
        /// Handler wall time.
        execution_ms: u64,
        /// The error message, for failures.
        error: Option<String>,
    },
    /// A task changed state after results.
    TaskChanged {
        /// The task.
        task_uuid: Uuid,
        /// State before.
        from: TaskState,
        /// State after.
        to: TaskState,
    },
}

/// A broadcast of [`EngineEvent`]s; publishing never blocks (slow subscribers lag).
#[derive(Debug, Clone)]
pub struct EngineEvents {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EngineEvents {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(ENGINE_EVENT_CAPACITY).0,
        }
    }
}

impl EngineEvents {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: EngineEvent) {
        let _ = self.tx.send(event);
    }

    /// Subscribes to events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }

    /// True when somebody listens (skip building events otherwise).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}
