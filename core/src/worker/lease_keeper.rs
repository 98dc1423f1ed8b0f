//! The lease keeper: while handlers run, it extends the leases of the claims this
//! worker holds, every third of a lease, never past a step's deadline. It lives in
//! Rust so a handler hogging its interpreter (Python's GIL, Ruby's GVL, a busy JS
//! thread) cannot starve it.

use super::worker_status::WorkerStatus;
use crate::clock::SharedClock;
use crate::shutdown::Shutdown;
use crate::store::{SharedStore, StepLeaseExtendManyParams};
use std::sync::Arc;
use std::time::Duration;

/// Extends held leases until shutdown.
pub async fn run(store: SharedStore, clock: SharedClock, status: Arc<WorkerStatus>, lease_ms: i64, shutdown: Shutdown) {
    let period = Duration::from_millis((lease_ms / 3).max(100) as u64);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let claims: Vec<_> = status
            .held_claims()
            .into_iter()
            .map(|(step, c)| (step, c.claim_seq))
            .collect();
        if claims.is_empty() {
            continue;
        }
        let now = clock.now_ms();
        let params = StepLeaseExtendManyParams {
            claims,
            lease_expires_at: now + lease_ms,
            now,
        };
        if let Err(e) = store.step_lease_extend_many(params).await {
            tracing::warn!(error = %e, "extending leases failed; will retry");
        }
    }
}
