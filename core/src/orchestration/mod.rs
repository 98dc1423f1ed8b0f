//! Orchestration: the four actors that move tasks along. Every engine process
//! hosts them (decision 1: result processing runs where the result arrives).
//!
//! - [`task_request`] — TaskRequest: validates a request against its template and
//!   creates the task, its steps and edges in one transaction, root steps enqueued.
//! - [`step_enqueuer`] — StepEnqueuer: timed work. Wakes workers when retry delays
//!   end and sweeps expired leases (a lost worker's steps go back to the queue
//!   without burning an attempt; a step past its deadline fails as a timeout).
//! - [`result_processor`] — ResultProcessor: turns handler results into outcomes
//!   (complete, retry after a backoff, or fail) and applies a batch of them in one
//!   transaction, which also enqueues successors and finalizes tasks.
//! - [`task_finalizer`] — TaskFinalizer: the rule that moves a task after its steps
//!   change (complete / waiting / blocked / error), run inside the same transaction
//!   as the step changes and guarded by a compare-and-swap, so a task is finalized
//!   exactly once however many results race.
//! - [`step_expansion`] — the rule for what a decision or batchable step's outcome
//!   creates (branches, batch workers, convergence steps and their edges), run by
//!   the store inside the result transaction, like the TaskFinalizer's rule.
//! - [`admission`] — backpressure: whether a task may be created now (TaskRequest's
//!   queue below its high-water mark, the namespace's ready steps under their limit,
//!   the database breaker not open), or when to come back.
//! - [`staleness`] — the staleness sweep: timed work that records stuck tasks and
//!   steps in the dead-letter queue and holds them for an operator.
//! - [`backoff`] — retry delays; [`template_lookup`] — templates registered in the database.

pub mod admission;
pub mod backoff;
pub mod result_processor;
pub mod staleness;
pub mod step_enqueuer;
pub mod step_expansion;
pub mod task_finalizer;
pub mod task_request;
pub mod template_lookup;

pub use result_processor::{HandlerOutcome, ResultProcessor};
pub use step_enqueuer::StepEnqueuer;
pub use task_finalizer::TaskFinalizer;
pub use task_request::{CreateTaskError, TaskRequest, TaskRequestHandle, TaskSubmission};
