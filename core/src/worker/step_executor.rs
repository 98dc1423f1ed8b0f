//! StepExecutor: claims ready steps and sends them to the dispatch channel.
//!
//! Capacity-aware: it claims at most as many steps as it has free handler slots
//! (permits of the worker's semaphore), and each dispatched step carries its
//! permit until its result is written. It claims again at once after a claim that
//! filled its batch, when woken (a commit enqueued steps in its namespace, a retry
//! delay ended, a slot freed), or after `poll_interval` (other processes' commits).
//!
//! Under load it claims in batches: when only a few slots are free (fewer than a
//! quarter of them), it waits up to [`CLAIM_LINGER`] for more to free before
//! claiming, so one claim serves them all. Otherwise steps would circulate in
//! small cohorts, each paying its own claim and result transactions. An idle
//! worker (most slots free) claims at once, so latency is unchanged.

use super::channels::DispatchMessage;
use super::worker_status::WorkerStatus;
use crate::clock::SharedClock;
use crate::events::{EngineEvents, WakeHub};
use crate::shutdown::Shutdown;
use crate::store::{SharedStore, StepClaimReadyManyParams};
use futures::future::select_all;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, Semaphore};

/// How long a busy worker waits for more free slots before claiming.
pub const CLAIM_LINGER: Duration = Duration::from_millis(1);

/// Claims steps for one worker.
#[derive(Debug)]
pub struct StepExecutor {
    /// Store to claim from.
    pub store: SharedStore,
    /// Time source.
    pub clock: SharedClock,
    /// Namespaces served.
    pub namespaces: Vec<String>,
    /// Handler slots.
    pub slots: Arc<Semaphore>,
    /// Notified whenever a slot frees.
    pub slot_freed: Arc<Notify>,
    /// Most steps per claim statement.
    pub claim_batch: u32,
    /// Lease length of a claim.
    pub lease_ms: i64,
    /// Fallback polling interval.
    pub poll_interval: Duration,
    /// Worker id.
    pub worker_id: String,
    /// Wake-ups per namespace.
    pub wake: WakeHub,
    /// Progress events.
    pub events: EngineEvents,
    /// Counters and held claims.
    pub status: Arc<WorkerStatus>,
    /// Handler slots in all (the semaphore's size).
    pub concurrency: usize,
    /// Claims are counted here.
    pub metrics: crate::metrics::SharedMetrics,
    /// While `ffi_completion` is open (results cannot be written), nothing is claimed.
    pub breakers: Arc<crate::breaker::Breakers>,
}

impl StepExecutor {
    /// Claims and dispatches until shutdown.
    pub async fn run(self, dispatch: mpsc::Sender<DispatchMessage>, shutdown: Shutdown) {
        if self.namespaces.is_empty() {
            // An orchestration-only engine (`tasker orchestrator`): nothing to claim.
            shutdown.wait().await;
            return;
        }
        let notifiers: Vec<Arc<Notify>> = self.namespaces.iter().map(|ns| self.wake.notifier(ns)).collect();
        let mut backoff_ms = 0u64;
        let few = (self.concurrency / 4).max(1);
        while !shutdown.is_triggered() {
            let available = self.slots.available_permits();
            if available > 0 && available < few {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(CLAIM_LINGER) => {}
                }
            }
            if let Err(open) = self.breakers.ffi_completion.check() {
                // Results cannot be written now: claiming more would only strand them.
                let wait =
                    Duration::from_millis(open.retry_after_ms).min(self.poll_interval.max(Duration::from_millis(10)));
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let mut claimed_any = false;
            let mut filled_batch = false;
            for ns in &self.namespaces {
                let free = self.slots.available_permits().min(self.claim_batch as usize) as u32;
                if free == 0 {
                    break;
                }
                let params = StepClaimReadyManyParams {
                    namespace: ns.clone(),
                    limit: free,
                    now: self.clock.now_ms(),
                    lease_ms: self.lease_ms,
                    worker_id: self.worker_id.clone(),
                };
                let steps = match self.store.step_claim_ready_many(params).await {
                    Ok(s) => {
                        backoff_ms = 0;
                        s
                    }
                    Err(e) => {
                        backoff_ms = (backoff_ms * 2).clamp(50, 5000);
                        tracing::warn!(error = %e, namespace = %ns, retry_in_ms = backoff_ms, "claim failed");
                        break;
                    }
                };
                filled_batch |= steps.len() as u32 == free;
                if !steps.is_empty() {
                    self.metrics
                        .steps_claimed
                        .with_label_values(&[ns])
                        .inc_by(steps.len() as u64);
                }
                for step in steps {
                    claimed_any = true;
                    // Only this loop takes permits, and it asked for no more than were free.
                    let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                        tracing::error!(step_uuid = %step.step_uuid, "no free slot for a claimed step; its lease will return it");
                        continue;
                    };
                    tracing::debug!(step_uuid = %step.step_uuid, task_uuid = %step.task_uuid,
                        correlation_id = %step.correlation_id, namespace = %ns, attempt = step.attempt, "step claimed");
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
                        return; // dispatch side gone: shutting down
                    }
                }
            }
            if backoff_ms > 0 {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
                }
                continue;
            }
            if claimed_any && filled_batch {
                continue;
            }
            let wakes = select_all(notifiers.iter().map(|n| Box::pin(n.notified())));
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = wakes => {}
                _ = self.slot_freed.notified(), if self.slots.available_permits() == 0 => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }
}
