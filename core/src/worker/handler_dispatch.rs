//! Handler dispatch: takes claimed steps off the dispatch channel and runs each
//! one's handler in its own task, under the step's timeout. A panic, a timeout,
//! an unknown handler: each becomes a failure result, never a crashed worker
//! (the failure table in `proto-contract/README.md`).
//!
//! A step whose callable has no Rust handler goes to the foreign channel when the
//! worker has one (a language binding's [`Bridge`](crate::bridge::Bridge) polls it),
//! and fails as `handler_not_found` otherwise.

use super::channels::{CompletionMessage, DispatchMessage, ForeignStep};
use super::checkpoint::Checkpointer;
use super::handler::{HandlerRegistry, StepContext, StepResult};
use crate::clock::SharedClock;
use crate::orchestration::HandlerOutcome;
use crate::store::ClaimedStep;
use crate::store::SharedStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tracing::Instrument;

/// Runs handlers for dispatched steps.
#[derive(Debug, Clone)]
pub struct HandlerDispatch {
    /// Handlers by callable.
    pub handlers: Arc<HandlerRegistry>,
    /// Worker id.
    pub worker_id: String,
    /// Where steps for host-language handlers go, when a bridge is attached.
    pub foreign: Option<mpsc::Sender<ForeignStep>>,
    /// Notified when a slot frees without a result.
    pub slot_freed: Arc<Notify>,
    /// Where handlers' checkpoints are saved.
    pub store: SharedStore,
    /// Time of checkpoints.
    pub clock: SharedClock,
    /// Lease length: a checkpoint extends the lease by this much.
    pub lease_ms: i64,
}

impl HandlerDispatch {
    /// Runs until the dispatch channel closes.
    pub async fn run(self, mut dispatch: mpsc::Receiver<DispatchMessage>, completion: mpsc::Sender<CompletionMessage>) {
        while let Some(msg) = dispatch.recv().await {
            if let Some(foreign) = &self.foreign {
                if self.handlers.get(&msg.step.handler_callable).is_none() {
                    let step = ForeignStep {
                        dispatch: msg,
                        completion: completion.clone(),
                        slot_freed: self.slot_freed.clone(),
                    };
                    // Closed: the bridge is gone (shutdown); the step's lease returns it.
                    let _ = foreign.send(step).await;
                    continue;
                }
            }
            let this = self.clone();
            let completion = completion.clone();
            tokio::spawn(async move {
                let done = this.execute(msg).await;
                // A closed completion channel means shutdown: the step's lease returns it.
                let _ = completion.send(done).await;
            });
        }
    }

    /// Runs one step's handler and packages the outcome.
    pub async fn execute(&self, msg: DispatchMessage) -> CompletionMessage {
        let DispatchMessage {
            step,
            permit,
            claimed_at: _,
        } = msg;
        let started = Instant::now();
        let result = match self.handlers.get(&step.handler_callable) {
            None => StepResult::permanent_failure(
                format!(
                    "no handler registered for callable `{}` (registered: {})",
                    step.handler_callable,
                    self.handlers.callables().join(", ")
                ),
                "handler_not_found",
            ),
            Some(handler) => {
                let ctx = StepContext {
                    task_uuid: step.task_uuid,
                    step_uuid: step.step_uuid,
                    step_name: step.name.clone(),
                    template_step_name: step.template_step_name.clone(),
                    namespace: step.task_namespace.clone(),
                    task_name: step.task_name.clone(),
                    context: step.context.clone(),
                    dependency_results: step.dependency_results.clone(),
                    initialization: step.handler_initialization.clone(),
                    attempt: step.attempt,
                    max_attempts: step.retry.max_attempts,
                    checkpoint: step.checkpoint.clone(),
                    correlation_id: step.correlation_id,
                    checkpointer: Some(Checkpointer::new(
                        self.store.clone(),
                        self.clock.clone(),
                        step.step_uuid,
                        step.claim_seq,
                        self.lease_ms,
                    )),
                };
                let method = step.handler_method.clone();
                // Every log line of the handler carries the step and its correlation id.
                let span = tracing::info_span!(
                    "step.execute",
                    correlation_id = %step.correlation_id,
                    task_uuid = %step.task_uuid,
                    step_uuid = %step.step_uuid,
                    step = %step.name,
                    namespace = %step.namespace,
                    handler = %step.handler_callable,
                    attempt = step.attempt,
                );
                // The handler runs in a task of its own: a panic surfaces as a JoinError,
                // and the timeout fires even when a handler blocks its thread.
                let task = tokio::spawn(async move { handler.call_method(&method, &ctx).await }.instrument(span));
                let abort = task.abort_handle();
                let limit = Duration::from_millis(step.timeout_ms.max(0) as u64);
                match tokio::time::timeout(limit, task).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(join)) if join.is_panic() => StepResult::failure(
                        format!("handler panicked: {}", panic_message(join.into_panic())),
                        "panic",
                    ),
                    Ok(Err(_)) => StepResult::failure("handler task was cancelled", "cancelled"),
                    Err(_) => {
                        abort.abort();
                        StepResult::failure(
                            format!("handler exceeded its timeout of {} ms", step.timeout_ms),
                            "timeout",
                        )
                    }
                }
            }
        };
        let execution_ms = started.elapsed().as_millis() as u64;
        completion_message(step, permit, result, execution_ms, &self.worker_id)
    }
}

/// Packages a finished attempt for the completion channel (Rust and host-language
/// handlers alike).
pub fn completion_message(
    step: ClaimedStep,
    permit: OwnedSemaphorePermit,
    result: StepResult,
    execution_ms: u64,
    worker_id: &str,
) -> CompletionMessage {
    {
        if let Some(e) = &result.error {
            tracing::info!(step = %step.name, task_uuid = %step.task_uuid, correlation_id = %step.correlation_id,
                attempt = step.attempt, error_type = %e.error_type, "attempt failed: {}", e.message);
        }
        CompletionMessage {
            outcome: HandlerOutcome {
                step_uuid: step.step_uuid,
                task_uuid: step.task_uuid,
                claim_seq: step.claim_seq,
                namespace: step.namespace.clone(),
                task_namespace: step.task_namespace.clone(),
                attempt: step.attempt,
                retry: step.retry.clone(),
                step_type: step.step_type.parse().unwrap_or_default(),
                result,
                execution_ms,
                handler: step.handler_callable.clone(),
                worker_id: worker_id.to_string(),
                events: vec![],
            },
            step_name: step.name,
            task_namespace: step.task_namespace,
            task_name: step.task_name,
            task_version: step.task_version,
            template_step_name: step.template_step_name,
            correlation_id: step.correlation_id,
            permit,
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}
