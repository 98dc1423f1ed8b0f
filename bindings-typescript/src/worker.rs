//! `NativeBridge`: [`tasker_core::bridge::Bridge`] one-to-one. Every method takes
//! and returns JSON text (the TypeScript `Bridge` class encodes and decodes it).
//! Every call that waits is an `async` export: it returns a Promise at once and
//! waits on the tokio runtime, so the JavaScript thread never blocks.

use crate::convert::{call, deferred, guarded, BoxedCall};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use tasker_core::bridge::{Bridge, BridgeError};

/// An embedded Tasker engine whose handlers run in JavaScript, driven by
/// polling. Open it with `NativeBridge.open(optionsJson)`; methods take and
/// return JSON text.
#[napi]
pub struct NativeBridge {
    inner: Arc<Bridge>,
}

/// Opening a bridge: its future is not provably `Send` (a higher-ranked lifetime
/// in sqlx's connection code), so it runs to completion on a blocking thread of
/// the runtime (`Handle::block_on` needs no `Send`); the Promise waits on that.
fn opening<F, Fut>(make: F) -> BoxedCall<Bridge>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::result::Result<Bridge, BridgeError>>,
{
    call(async move {
        let handle = crate::runtime::handle()?.clone();
        let inner = handle.clone();
        handle
            .spawn_blocking(move || inner.block_on(make()))
            .await
            .map_err(|e| BridgeError::Internal(format!("opening the bridge: {e}")))?
    })
}

/// Longest wait a JS number of milliseconds asks for (a year; `Infinity` included).
const MAX_WAIT_MS: u64 = 365 * 24 * 3_600_000;

/// A JS number of milliseconds as a wait: NaN and negatives are 0, the rest is
/// capped at [`MAX_WAIT_MS`].
pub(crate) fn ms(value: f64) -> u64 {
    if value > 0.0 {
        value.min(MAX_WAIT_MS as f64) as u64
    } else {
        0
    }
}

impl NativeBridge {
    /// The core bridge (for the other native classes).
    pub(crate) fn bridge(&self) -> &Bridge {
        &self.inner
    }
}

#[napi]
impl NativeBridge {
    /// Opens the database (applying migrations), registers the templates and
    /// starts the engine. `optionsJson`: `{"database_url": ..., "namespaces": [...],
    /// "concurrency": 8, "templates": [...], ...}` (unknown keys are refused).
    #[napi]
    pub async fn open(options_json: String) -> Result<NativeBridge> {
        let bridge = deferred(opening(move || async move { Bridge::open_json(&options_json).await })).await?;
        Ok(NativeBridge {
            inner: Arc::new(bridge),
        })
    }

    /// A bridge handing out synthetic step events (at most `concurrency` at once)
    /// and dropping their results: the contract's cost without database work.
    #[napi]
    pub async fn loopback(concurrency: u32) -> Result<NativeBridge> {
        let bridge = deferred(opening(move || async move {
            Bridge::open_loopback(concurrency as usize).await
        }))
        .await?;
        Ok(NativeBridge {
            inner: Arc::new(bridge),
        })
    }

    /// Waits up to `timeoutMs` for claimed steps; a JSON array of at most
    /// `maxEvents` step events (`[]` on timeout and during a drain).
    #[napi]
    pub async fn poll_step_events(&self, max_events: u32, timeout_ms: f64) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move {
            b.poll_step_events_json(max_events, ms(timeout_ms)).await
        }))
        .await
    }

    /// Records a JSON array of step results; answers the completion report JSON.
    #[napi]
    pub async fn complete_step_events(&self, results_json: String) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move { b.complete_step_events_json(&results_json).await })).await
    }

    /// Moves the event's deadline and extends its lease; the new deadline (epoch ms).
    #[napi]
    pub async fn extend_lease(&self, event_id: String) -> Result<i64> {
        let b = self.inner.clone();
        deferred(call(async move { b.extend_lease_json(&event_id).await })).await
    }

    /// Hands the step back without a result (no attempt counted); false when the
    /// event is not held.
    #[napi]
    pub async fn release_step_event(&self, event_id: String) -> Result<bool> {
        let b = self.inner.clone();
        deferred(call(async move { b.release_step_event_json(&event_id).await })).await
    }

    /// Saves a checkpoint (cursor and data as JSON) and extends the lease.
    #[napi]
    pub async fn checkpoint_step(&self, event_id: String, cursor_json: String, data_json: String) -> Result<()> {
        let b = self.inner.clone();
        deferred(call(async move {
            b.checkpoint_step_json(&event_id, &cursor_json, &data_json).await
        }))
        .await
    }

    /// Publishes a domain event (payload JSON; mode `fast`, `durable` or
    /// `broadcast`); answers the event as JSON. With `eventId` it rides with that
    /// step's result; without, a durable event is stored before the Promise settles.
    #[napi]
    pub async fn publish_domain_event(
        &self,
        name: String,
        payload_json: String,
        mode: Option<String>,
        event_id: Option<String>,
    ) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move {
            b.publish_domain_event_json(
                &name,
                &payload_json,
                mode.as_deref().unwrap_or("fast"),
                event_id.as_deref(),
            )
            .await
        }))
        .await
    }

    /// State and counters as JSON.
    #[napi]
    pub fn worker_status(&self) -> Result<String> {
        guarded(|| self.inner.worker_status_json())
    }

    /// Stops claiming, waits up to `graceMs` for outstanding results, releases
    /// the rest: `{"drained": n, "released": n}`. Idempotent.
    #[napi]
    pub async fn shutdown(&self, grace_ms: f64) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move { b.shutdown_json(ms(grace_ms)).await })).await
    }

    /// Creates a task from a task request JSON; answers the task view JSON.
    #[napi]
    pub async fn create_task(&self, request_json: String) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move { b.create_task_json(&request_json).await })).await
    }

    /// The task view JSON.
    #[napi]
    pub async fn get_task(&self, task_uuid: String) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(async move { b.get_task_json(&task_uuid).await })).await
    }

    /// Waits until the task is finished; the task view JSON (`wait_timed_out`
    /// when `timeoutMs` runs out first).
    #[napi]
    pub async fn wait_for_task(&self, task_uuid: String, timeout_ms: f64) -> Result<String> {
        let b = self.inner.clone();
        deferred(call(
            async move { b.wait_for_task_json(&task_uuid, ms(timeout_ms)).await },
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_milliseconds_become_bounded_waits() {
        assert_eq!(ms(250.0), 250);
        assert_eq!(ms(0.4), 0);
        assert_eq!(ms(-5.0), 0);
        assert_eq!(ms(f64::NAN), 0);
        assert_eq!(ms(f64::INFINITY), MAX_WAIT_MS);
        assert_eq!(ms(1e300), MAX_WAIT_MS);
    }
}
