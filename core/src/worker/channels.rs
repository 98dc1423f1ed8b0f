//! The worker's two bounded channels and what travels on them.
//!
//! - dispatch: StepExecutor → handler dispatch. Carries a claimed step together
//!   with the handler slot (semaphore permit) it holds, so the worker can never
//!   hold more claimed steps than it has slots.
//! - completion: handler dispatch → FFICompletion. Carries the outcome and the
//!   slot; the slot is freed only after the result is written.
//!
//! - foreign: handler dispatch → a [`Bridge`](crate::bridge::Bridge), for steps
//!   whose handler lives in a host language (Python, Ruby, TypeScript). Bounded by
//!   the worker's slots: every message holds one.
//!
//! All are bounded; a full channel makes the sender wait (backpressure), it never
//! buffers without limit and never drops a result.

use crate::orchestration::HandlerOutcome;
use crate::store::ClaimedStep;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};

/// Default dispatch channel capacity (steps claimed and waiting for a handler task).
pub const DEFAULT_DISPATCH_CAPACITY: usize = 1024;
/// Default completion channel capacity (results waiting to be written).
pub const DEFAULT_COMPLETION_CAPACITY: usize = 1024;

/// A claimed step on its way to a handler.
#[derive(Debug)]
pub struct DispatchMessage {
    /// The step, hydrated.
    pub step: ClaimedStep,
    /// The handler slot it holds.
    pub permit: OwnedSemaphorePermit,
    /// When it was claimed.
    pub claimed_at: Instant,
}

/// A finished attempt on its way to the store.
#[derive(Debug)]
pub struct CompletionMessage {
    /// What happened.
    pub outcome: HandlerOutcome,
    /// Step name (for events).
    pub step_name: String,
    /// Namespace of the task's template (for domain events).
    pub task_namespace: String,
    /// Task template name and version (for domain events).
    pub task_name: String,
    /// Task template version.
    pub task_version: String,
    /// Template step name.
    pub template_step_name: String,
    /// Correlation id.
    pub correlation_id: uuid::Uuid,
    /// The handler slot, released once the result is written.
    pub permit: OwnedSemaphorePermit,
}

/// A claimed step for a host-language handler, on its way to a bridge.
#[derive(Debug)]
pub struct ForeignStep {
    /// The step and its slot.
    pub dispatch: DispatchMessage,
    /// Where its result goes.
    pub completion: mpsc::Sender<CompletionMessage>,
    /// Notify after freeing the slot without a result (a release), so the
    /// StepExecutor claims again.
    pub slot_freed: Arc<Notify>,
}
