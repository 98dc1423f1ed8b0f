//! Checkpoints of Rust batch workers: what `StepContext::save_checkpoint` writes.
//!
//! A checkpoint (`{"cursor", "data", "saved_at_ms"}`) is saved on the step while its
//! claim is held, and extends the lease like any sign of life. It outlives the
//! attempt: when the worker is lost (its lease expires) or the attempt fails and is
//! retried, the next attempt's context carries it, and `cursor_range` starts at its
//! cursor. Host-language handlers do the same through `Bridge::checkpoint_step`.

use crate::clock::SharedClock;
use crate::store::{SharedStore, StepHeartbeatParams, StoreError};
use serde_json::{json, Value};
use uuid::Uuid;

/// Why a checkpoint was not saved.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The context was built outside a worker (a unit test): there is no step to save on.
    #[error("this step context is not attached to a worker; there is nowhere to save a checkpoint")]
    NotAttached,
    /// The attempt no longer holds the step (its lease was swept, or it timed out):
    /// stop working; another attempt will resume from the last saved checkpoint.
    #[error("step {0} is no longer held by this attempt; its last saved checkpoint stands")]
    ClaimLost(Uuid),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Saves checkpoints for one claimed step.
#[derive(Clone)]
pub struct Checkpointer {
    store: SharedStore,
    clock: SharedClock,
    step_uuid: Uuid,
    claim_seq: i64,
    lease_ms: i64,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("step_uuid", &self.step_uuid)
            .field("claim_seq", &self.claim_seq)
            .finish()
    }
}

impl Checkpointer {
    /// A checkpointer for the claim `claim_seq` of `step_uuid`; each save extends
    /// the lease by `lease_ms` (never past the attempt's deadline).
    pub fn new(store: SharedStore, clock: SharedClock, step_uuid: Uuid, claim_seq: i64, lease_ms: i64) -> Self {
        Self {
            store,
            clock,
            step_uuid,
            claim_seq,
            lease_ms,
        }
    }

    /// Saves `{"cursor": cursor, "data": data, "saved_at_ms": now}` on the step.
    pub async fn save(&self, cursor: Value, data: Value) -> Result<(), CheckpointError> {
        let now = self.clock.now_ms();
        let held = self
            .store
            .step_heartbeat(StepHeartbeatParams {
                step_uuid: self.step_uuid,
                claim_seq: self.claim_seq,
                lease_expires_at: now + self.lease_ms,
                deadline_at: None,
                checkpoint: Some(json!({ "cursor": cursor, "data": data, "saved_at_ms": now })),
                now,
            })
            .await?;
        match held {
            Some(_) => Ok(()),
            None => Err(CheckpointError::ClaimLost(self.step_uuid)),
        }
    }
}
