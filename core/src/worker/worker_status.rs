//! WorkerStatus: what the worker is doing — counters, in-flight claims, health.
//! Lock-free counters; the in-flight map is what the lease keeper extends and
//! what a drain releases.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

/// A claim the worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldClaim {
    /// The claim sequence number.
    pub claim_seq: i64,
    /// When the attempt's deadline passes.
    pub deadline_at: i64,
}

/// Live worker counters.
#[derive(Debug)]
pub struct WorkerStatus {
    worker_id: String,
    concurrency: usize,
    claimed: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    write_errors: AtomicU64,
    held: Mutex<HashMap<Uuid, HeldClaim>>,
}

/// A point-in-time copy of [`WorkerStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatusSnapshot {
    /// Worker id.
    pub worker_id: String,
    /// Handler slots.
    pub concurrency: usize,
    /// Claims held now.
    pub in_flight: usize,
    /// Steps claimed since start.
    pub claimed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Results the store refused (the claim had expired).
    pub rejected: u64,
    /// Result batches that could not be written.
    pub write_errors: u64,
}

impl WorkerStatus {
    /// Fresh counters.
    pub fn new(worker_id: String, concurrency: usize) -> Self {
        Self {
            worker_id,
            concurrency,
            claimed: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HeldClaim>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a claim.
    pub fn claimed(&self, step: Uuid, claim: HeldClaim) {
        self.claimed.fetch_add(1, Ordering::Relaxed);
        self.held().insert(step, claim);
    }

    /// Records a claim and announces it on `events` (StepExecutor claims and eager
    /// claims alike).
    pub fn announce_claim(&self, step: &crate::store::ClaimedStep, events: &crate::events::EngineEvents) {
        self.claimed(
            step.step_uuid,
            HeldClaim {
                claim_seq: step.claim_seq,
                deadline_at: step.deadline_at,
            },
        );
        if events.has_subscribers() {
            events.publish(crate::events::EngineEvent::StepStarted {
                task_uuid: step.task_uuid,
                step_uuid: step.step_uuid,
                name: step.name.clone(),
                attempt: step.attempt,
                handler: step.handler_callable.clone(),
            });
        }
    }

    /// Records a written result.
    pub fn finished(&self, step: Uuid, success: bool) {
        let counter = if success { &self.succeeded } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        self.held().remove(&step);
    }

    /// Records a result the store refused.
    pub fn rejected(&self, step: Uuid) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.held().remove(&step);
    }

    /// Records a batch that could not be written (its claims stay held until their
    /// leases expire).
    pub fn write_error(&self) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets a claim (released or abandoned).
    pub fn forget(&self, step: Uuid) {
        self.held().remove(&step);
    }

    /// The claims held now.
    pub fn held_claims(&self) -> Vec<(Uuid, HeldClaim)> {
        self.held().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// A snapshot.
    pub fn snapshot(&self) -> WorkerStatusSnapshot {
        WorkerStatusSnapshot {
            worker_id: self.worker_id.clone(),
            concurrency: self.concurrency,
            in_flight: self.held().len(),
            claimed: self.claimed.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}
