//! The loopback feed behind [`Bridge::open_loopback`](super::Bridge::open_loopback):
//! synthetic claimed steps for benchmarks of the binding layer, each holding one
//! of `concurrency` slots, and a sink that drops their results (freeing the slot).

use crate::clock::SharedClock;
use crate::store::ClaimedStep;
use crate::template::RetryPolicy;
use crate::worker::channels::{CompletionMessage, DispatchMessage, ForeignStep};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Notify, Semaphore};
use uuid::Uuid;

/// The namespace of loopback events.
pub const NAMESPACE: &str = "loopback";

/// Starts the feed and the sink; returns the queue a bridge polls.
pub fn spawn(concurrency: usize, clock: SharedClock) -> mpsc::Receiver<ForeignStep> {
    let (foreign_tx, foreign_rx) = mpsc::channel(concurrency);
    let (completion_tx, mut completion_rx) = mpsc::channel::<CompletionMessage>(concurrency);
    let slots = Arc::new(Semaphore::new(concurrency));
    let slot_freed = Arc::new(Notify::new());
    let task_uuid = Uuid::now_v7();
    tokio::spawn(async move {
        while let Ok(permit) = slots.clone().acquire_owned().await {
            let now = clock.now_ms();
            let step = ClaimedStep {
                step_uuid: Uuid::now_v7(),
                task_uuid,
                claim_seq: 1,
                name: "loopback".into(),
                template_step_name: "loopback".into(),
                namespace: NAMESPACE.into(),
                task_namespace: NAMESPACE.into(),
                task_name: "loopback".into(),
                task_version: "1.0.0".into(),
                step_type: "standard".into(),
                handler_callable: "loopback".into(),
                handler_method: "call".into(),
                handler_initialization: json!({}),
                retry: RetryPolicy::default(),
                timeout_ms: 3_600_000,
                attempt: 1,
                lease_expires_at: now + 3_600_000,
                deadline_at: now + 3_600_000,
                checkpoint: None,
                context: json!({"n": 1}),
                dependency_results: BTreeMap::new(),
                correlation_id: task_uuid,
            };
            let message = ForeignStep {
                dispatch: DispatchMessage {
                    step,
                    permit,
                    claimed_at: Instant::now(),
                },
                completion: completion_tx.clone(),
                slot_freed: slot_freed.clone(),
            };
            if foreign_tx.send(message).await.is_err() {
                return; // the bridge is gone
            }
        }
    });
    tokio::spawn(async move {
        // Dropping a result frees its slot, so the feed makes another event.
        while completion_rx.recv().await.is_some() {}
    });
    foreign_rx
}
