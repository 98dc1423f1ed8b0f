//! ResultProcessor: turns what handlers returned into step outcomes and applies a
//! batch of them in one transaction.
//!
//! A success completes the step; a decision or batchable step's success also
//! creates the steps its outcome names, in the same transaction (see
//! [`super::step_expansion`]). A failure is retried when the handler says it is
//! retryable, the step's policy allows retries and attempts remain; the delay is the
//! handler's retry-after hint or the policy's backoff (see [`super::backoff`]).
//! Anything else fails the step for good. The store then enqueues successors and
//! lets the [`super::task_finalizer`] move the task, all in the same transaction.

use super::backoff;
use super::step_expansion::{INVALID_BATCHES, INVALID_DECISION};
use crate::clock::{EpochMillis, SharedClock};
use crate::contract::outcome::{self, DynamicOutcome};
use crate::contract::step_result::INVALID_RESULT;
use crate::metrics::{EngineMetrics, SharedMetrics};
use crate::state::{StepState, TaskState};
use crate::store::{
    CompletionReport, EagerClaim, SharedStore, StepCompleteManyParams, StepCompletion, StepOutcome, StoreError,
};
use crate::template::{RetryPolicy, StepType};
use crate::worker::handler::StepResult;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// One finished attempt, as reported by whoever ran the handler.
#[derive(Debug, Clone)]
pub struct HandlerOutcome {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// The claim the attempt ran under.
    pub claim_seq: i64,
    /// Namespace (for wake-ups).
    pub namespace: String,
    /// The task's namespace (its template's; metrics of task outcomes).
    pub task_namespace: String,
    /// Which attempt this was (1-based).
    pub attempt: u32,
    /// The step's retry policy.
    pub retry: RetryPolicy,
    /// The step's type: the success of a decision or batchable step carries an
    /// outcome that creates steps.
    pub step_type: StepType,
    /// What the handler returned.
    pub result: StepResult,
    /// Wall time the handler took.
    pub execution_ms: u64,
    /// The handler's callable (empty when no handler ran, e.g. a lease-sweep timeout).
    pub handler: String,
    /// Who ran it.
    pub worker_id: String,
    /// Durable events written with this result, in its transaction, when the
    /// result is applied (declared events whose condition matches, and explicit
    /// publishes; their payloads already checked against their schemas).
    pub events: Vec<crate::store::PendingDomainEvent>,
}

/// A retry that was scheduled: the step becomes claimable at `ready_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRetry {
    /// Namespace of the step.
    pub namespace: String,
    /// When it becomes claimable.
    pub ready_at: EpochMillis,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct ProcessedBatch {
    /// The store's report.
    pub report: CompletionReport,
    /// Retries scheduled by this batch.
    pub retries: Vec<ScheduledRetry>,
}

/// What a success does: completes the step; for a decision or batchable step,
/// also creates the steps its outcome names (`StepOutcome::Expand`). Such a step
/// that returns no outcome, or a malformed one, fails (not retryable).
fn success_outcome(o: &HandlerOutcome) -> StepOutcome {
    let result = o.result.result.clone();
    let (found, missing_type, what) = match o.step_type {
        StepType::Decision => (
            outcome::decision_outcome(&result).map(|r| r.map(DynamicOutcome::Decision)),
            INVALID_DECISION,
            "a decision step must return `result.decision_point_outcome` \
             ({\"type\": \"create_steps\", \"step_names\": [...]} or {\"type\": \"no_branches\"})",
        ),
        StepType::Batchable => (
            outcome::batch_outcome(&result).map(|r| r.map(DynamicOutcome::Batch)),
            INVALID_BATCHES,
            "a batchable step must return `result.batch_processing_outcome` \
             ({\"type\": \"create_batches\", ...} or {\"type\": \"no_batches\"})",
        ),
        _ => return StepOutcome::Complete { result },
    };
    let permanent = |message: &str, error_type: &str| StepOutcome::Fail {
        error: json!({ "message": message, "error_type": error_type, "retryable": false, "attempt": o.attempt }),
    };
    match found {
        Some(Ok(outcome)) => StepOutcome::Expand { result, outcome },
        Some(Err(message)) => permanent(&message, INVALID_RESULT),
        None => permanent(what, missing_type),
    }
}

/// Applies handler outcomes.
#[derive(Debug)]
pub struct ResultProcessor {
    store: SharedStore,
    clock: SharedClock,
    processor: String,
    rng: Mutex<StdRng>,
    metrics: SharedMetrics,
}

impl ResultProcessor {
    /// A processor writing audit rows as `processor`.
    pub fn new(store: SharedStore, clock: SharedClock, processor: String) -> Self {
        Self {
            store,
            clock,
            processor,
            rng: Mutex::new(StdRng::from_os_rng()),
            metrics: Arc::new(EngineMetrics::new()),
        }
    }

    /// Records results, retries and task outcomes in `metrics` (the engine's).
    pub fn with_metrics(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// What an outcome does to its step, decided at `now`.
    pub fn decide(&self, o: &HandlerOutcome, now: EpochMillis) -> StepOutcome {
        if o.result.success {
            return success_outcome(o);
        }
        let Some(err) = o.result.error.as_ref() else {
            return StepOutcome::Fail {
                error: json!({
                    "message": "handler reported a failure without an error",
                    "error_type": "invalid_result", "retryable": false, "attempt": o.attempt,
                }),
            };
        };
        let attempts_left = o.attempt < o.retry.max_attempts;
        let will_retry = err.retryable && o.retry.retryable && attempts_left;
        let mut error = serde_json::to_value(err).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut error {
            map.insert("attempt".into(), json!(o.attempt));
            if err.retryable && !will_retry {
                map.insert("attempts_exhausted".into(), json!(o.retry.retryable));
            }
        }
        if will_retry {
            let delay = {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                backoff::delay_ms(&o.retry, o.attempt, err.retry_after_ms, &mut *rng)
            };
            StepOutcome::RetryAt {
                error,
                ready_at: now + delay as i64,
            }
        } else {
            StepOutcome::Fail { error }
        }
    }

    /// Decides and applies a batch of outcomes in one transaction; with `eager`, the
    /// same transaction claims successors the batch made ready (eager dispatch).
    pub async fn process(
        &self,
        outcomes: &[HandlerOutcome],
        eager: Option<EagerClaim>,
    ) -> Result<ProcessedBatch, StoreError> {
        let now = self.clock.now_ms();
        let mut retries = Vec::new();
        let completions = outcomes
            .iter()
            .map(|o| {
                let outcome = self.decide(o, now);
                if let StepOutcome::RetryAt { ready_at, .. } = &outcome {
                    retries.push(ScheduledRetry {
                        namespace: o.namespace.clone(),
                        ready_at: *ready_at,
                    });
                }
                let mut metadata =
                    json!({ "worker_id": o.worker_id, "attempt": o.attempt, "execution_ms": o.execution_ms });
                if !o.result.metadata.is_empty() {
                    metadata["handler"] = Value::Object(o.result.metadata.clone());
                }
                StepCompletion {
                    step_uuid: o.step_uuid,
                    claim_seq: o.claim_seq,
                    outcome,
                    metadata,
                    events: o.events.clone(),
                }
            })
            .collect();
        let report = self
            .store
            .step_complete_many(StepCompleteManyParams {
                completions,
                now,
                processor: self.processor.clone(),
                eager,
            })
            .await?;
        for rejected in &report.rejected {
            tracing::warn!(step_uuid = %rejected, "late result ignored: the step is no longer held by that claim");
        }
        self.record(outcomes, &report);
        Ok(ProcessedBatch { report, retries })
    }

    /// Counts a written batch: handler durations, step results, retries, task
    /// outcomes and eager claims.
    fn record(&self, outcomes: &[HandlerOutcome], report: &CompletionReport) {
        let m = &self.metrics;
        let by_step: HashMap<Uuid, &HandlerOutcome> = outcomes.iter().map(|o| (o.step_uuid, o)).collect();
        let task_ns: HashMap<Uuid, &str> = outcomes
            .iter()
            .map(|o| (o.task_uuid, o.task_namespace.as_str()))
            .collect();
        for o in outcomes {
            if !o.handler.is_empty() {
                let outcome = if o.result.success { "success" } else { "failure" };
                m.step_duration
                    .with_label_values(&[&o.namespace, &o.handler, outcome])
                    .observe(o.execution_ms as f64 / 1000.0);
            }
        }
        for applied in &report.applied {
            let Some(o) = by_step.get(&applied.step_uuid) else {
                continue;
            };
            let outcome = match applied.state {
                StepState::Complete => "complete",
                StepState::WaitingForRetry => {
                    m.step_retries.with_label_values(&[&o.namespace]).inc();
                    "retry"
                }
                StepState::Error => "error",
                _ => continue,
            };
            m.step_results.with_label_values(&[&o.namespace, outcome]).inc();
        }
        for rejected in &report.rejected {
            if let Some(o) = by_step.get(rejected) {
                m.step_results.with_label_values(&[&o.namespace, "rejected"]).inc();
            }
        }
        for change in &report.tasks {
            let Some(ns) = task_ns.get(&change.task_uuid) else {
                continue;
            };
            match change.to {
                TaskState::Complete => m.tasks_completed.with_label_values(&[ns]).inc(),
                TaskState::Error => m.tasks_failed.with_label_values(&[ns]).inc(),
                TaskState::BlockedByFailures => m.tasks_blocked.with_label_values(&[ns]).inc(),
                _ => {}
            }
        }
        for claimed in &report.claimed {
            m.steps_claimed.with_label_values(&[&claimed.namespace]).inc();
        }
    }
}
