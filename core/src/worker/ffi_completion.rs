//! FFICompletion: collects finished attempts from the completion channel and
//! writes them to the store in batches — whatever is waiting when it wakes, up to
//! `batch_size`, in one transaction. The results of Rust handlers and of foreign
//! (FFI) handlers take the same path.
//!
//! Eager dispatch: the write's transaction also claims successors the results made
//! ready (in this worker's namespaces, up to the slots the results free), and they
//! go straight to the dispatch channel carrying those slots; a chain of steps
//! costs one transaction per step. After a write it frees the remaining slots,
//! wakes the namespaces that got new steps, schedules wake-ups for retries, and
//! publishes domain and progress events.
//! A write that fails is retried with backoff; after `MAX_WRITE_ATTEMPTS` the
//! batch is given up and its steps return to the queue when their leases expire
//! (nothing is lost, the attempt is not counted).

use super::channels::{CompletionMessage, DispatchMessage};
use super::domain_event::{DomainEventPublisher, FinishedAttempt};
use super::worker_status::WorkerStatus;
use crate::clock::SharedClock;
use crate::events::{EngineEvent, EngineEvents, WakeHub};
use crate::orchestration::step_enqueuer::WakeScheduler;
use crate::orchestration::ResultProcessor;
use crate::store::EagerClaim;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

/// Attempts to write one batch before giving up on it.
pub const MAX_WRITE_ATTEMPTS: u32 = 5;

/// Writes results.
#[derive(Debug)]
pub struct FfiCompletion {
    /// Applies outcomes.
    pub results: Arc<ResultProcessor>,
    /// Time source.
    pub clock: SharedClock,
    /// Most results per transaction.
    pub batch_size: usize,
    /// Wake-ups per namespace.
    pub wake: WakeHub,
    /// Retry wake-ups.
    pub scheduler: Option<WakeScheduler>,
    /// Progress events.
    pub events: EngineEvents,
    /// Domain events.
    pub domain: DomainEventPublisher,
    /// Counters.
    pub status: Arc<WorkerStatus>,
    /// Notified when slots free.
    pub slot_freed: Arc<Notify>,
    /// The dispatch channel, for eager dispatch; weak, so that it closes when the
    /// StepExecutor stops (no eager claims during a drain).
    pub dispatch: mpsc::WeakSender<DispatchMessage>,
    /// Namespaces this worker serves.
    pub namespaces: Vec<String>,
    /// Lease length of a claim.
    pub lease_ms: i64,
    /// Worker id.
    pub worker_id: String,
    /// Each write's outcome is recorded in `ffi_completion`.
    pub breakers: Arc<crate::breaker::Breakers>,
}

impl FfiCompletion {
    /// Runs until the completion channel closes (every sender dropped).
    pub async fn run(self, mut completion: mpsc::Receiver<CompletionMessage>) {
        let mut batch = Vec::with_capacity(self.batch_size);
        while let Some(first) = completion.recv().await {
            batch.push(first);
            while batch.len() < self.batch_size {
                match completion.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&self, batch: Vec<CompletionMessage>) {
        let span = tracing::info_span!("step.complete", results = batch.len());
        self.write_batch(batch).instrument(span).await
    }

    async fn write_batch(&self, batch: Vec<CompletionMessage>) {
        // Domain events: durable halves ride in the write, fast halves wait for it.
        let templates: HashSet<(&str, &str, &str)> = batch
            .iter()
            .map(|m| (m.task_namespace.as_str(), m.task_name.as_str(), m.task_version.as_str()))
            .collect();
        for (namespace, name, version) in templates {
            self.domain.ensure_template(namespace, name, version).await;
        }
        let prepared_at = self.clock.now_ms();
        let mut fast = HashMap::new();
        let outcomes: Vec<_> = batch
            .iter()
            .map(|m| {
                let mut outcome = m.outcome.clone();
                let prepared = self.domain.prepare(&FinishedAttempt {
                    task_uuid: outcome.task_uuid,
                    step_uuid: outcome.step_uuid,
                    step_name: &m.step_name,
                    template_step_name: &m.template_step_name,
                    namespace: &m.task_namespace,
                    task_name: &m.task_name,
                    task_version: &m.task_version,
                    correlation_id: m.correlation_id,
                    success: outcome.result.success,
                    payload: &outcome.result.result,
                    published: &outcome.result.published,
                    now: prepared_at,
                });
                outcome.events = prepared.durable;
                fast.insert(outcome.step_uuid, prepared.fast);
                outcome
            })
            .collect();
        let dispatch = self.dispatch.upgrade();
        let eager = dispatch.as_ref().map(|_| EagerClaim {
            namespaces: self.namespaces.clone(),
            limit: batch.len() as u32,
            lease_ms: self.lease_ms,
            worker_id: self.worker_id.clone(),
        });
        let mut delay = Duration::from_millis(20);
        let mut written = None;
        for attempt in 1..=MAX_WRITE_ATTEMPTS {
            match self.results.process(&outcomes, eager.clone()).await {
                Ok(done) => {
                    self.breakers.ffi_completion.record_success();
                    written = Some(done);
                    break;
                }
                Err(e) => {
                    self.breakers.ffi_completion.record_failure();
                    tracing::warn!(error = %e, attempt, results = outcomes.len(), "writing results failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        let Some(done) = written else {
            tracing::error!(
                results = outcomes.len(),
                "giving up on a result batch; its steps return to the queue when their leases expire"
            );
            self.status.write_error();
            for m in &batch {
                self.status.forget(m.outcome.step_uuid);
            }
            drop(batch);
            self.slot_freed.notify_one();
            return;
        };
        let correlations: HashMap<_, _> = batch.iter().map(|m| (m.outcome.task_uuid, m.correlation_id)).collect();
        let rejected: HashSet<_> = done.report.rejected.iter().copied().collect();
        let states: HashMap<_, _> = done.report.applied.iter().map(|a| (a.step_uuid, a.state)).collect();
        for m in &batch {
            let o = &m.outcome;
            if rejected.contains(&o.step_uuid) {
                self.status.rejected(o.step_uuid);
                continue;
            }
            self.status.finished(o.step_uuid, o.result.success);
            tracing::debug!(step_uuid = %o.step_uuid, task_uuid = %o.task_uuid, correlation_id = %m.correlation_id,
                state = ?states.get(&o.step_uuid), "step result written");
            if let Some(&state) = states.get(&o.step_uuid) {
                let written = outcomes.iter().find(|w| w.step_uuid == o.step_uuid);
                self.domain.after_write(
                    fast.remove(&o.step_uuid).unwrap_or_default(),
                    written.map(|w| w.events.as_slice()).unwrap_or_default(),
                    state,
                );
            }
            if self.events.has_subscribers() {
                if let Some(state) = states.get(&o.step_uuid) {
                    self.events.publish(EngineEvent::StepFinished {
                        task_uuid: o.task_uuid,
                        step_uuid: o.step_uuid,
                        name: m.step_name.clone(),
                        attempt: o.attempt,
                        state: *state,
                        execution_ms: o.execution_ms,
                        error: o
                            .result
                            .error
                            .as_ref()
                            .map(|e| format!("{}: {}", e.error_type, e.message)),
                    });
                }
            }
        }
        // Eagerly claimed successors take over slots of the results just written.
        let mut permits: Vec<_> = batch.into_iter().map(|m| m.permit).collect();
        if let Some(dispatch) = dispatch {
            for step in done.report.claimed {
                let Some(permit) = permits.pop() else {
                    tracing::error!(step_uuid = %step.step_uuid, "eager claim exceeded the freed slots; its lease will return it");
                    continue;
                };
                self.status.announce_claim(&step, &self.events);
                if dispatch
                    .send(DispatchMessage {
                        step,
                        permit,
                        claimed_at: Instant::now(),
                    })
                    .await
                    .is_err()
                {
                    break; // shutting down: the lease returns the step
                }
            }
        }
        // Free the other slots before waking, so the woken executor finds them free.
        drop(permits);
        self.slot_freed.notify_one();
        let mut woken = HashSet::new();
        for s in &done.report.enqueued {
            if woken.insert(s.namespace.as_str()) {
                self.wake.wake(&s.namespace);
            }
        }
        if let Some(scheduler) = &self.scheduler {
            for r in &done.retries {
                scheduler.wake_at(&r.namespace, r.ready_at);
            }
        }
        for change in &done.report.tasks {
            if change.to.is_terminal() || change.to == crate::state::TaskState::BlockedByFailures {
                let correlation_id = correlations
                    .get(&change.task_uuid)
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                tracing::info!(task_uuid = %change.task_uuid, correlation_id = %correlation_id,
                    state = change.to.as_str(), "task finished");
            }
            self.events.publish(EngineEvent::TaskChanged {
                task_uuid: change.task_uuid,
                from: change.from,
                to: change.to,
            });
        }
    }
}
