//! `NativeEventSubscriber`: [`tasker_core::bridge::BridgeSubscriber`] one-to-one.
//! `poll`, `ack` and `rewind` are `async` exports: they return a Promise at once
//! and wait on the tokio runtime, so the JavaScript thread never blocks (as
//! `pollStepEvents` does). Events cross as JSON text (the TypeScript
//! `EventSubscriber` decodes them).

use crate::convert::{call, deferred, guarded};
use crate::worker::{ms, NativeBridge};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use tasker_core::bridge::BridgeSubscriber;

/// A named consumer of durable domain events, read at least once. Open it with
/// `NativeEventSubscriber.open(bridge, consumer, namePattern)`.
#[napi]
pub struct NativeEventSubscriber {
    inner: Arc<BridgeSubscriber>,
}

#[napi]
impl NativeEventSubscriber {
    /// A subscriber on `bridge`'s database reading as `consumer`; with
    /// `namePattern`, only events whose name matches it (`*` matches anything).
    #[napi(factory)]
    pub fn open(
        bridge: &NativeBridge,
        consumer: String,
        name_pattern: Option<String>,
    ) -> Result<NativeEventSubscriber> {
        let inner = guarded(|| bridge.bridge().event_subscriber(&consumer, name_pattern.as_deref()))?;
        Ok(NativeEventSubscriber { inner: Arc::new(inner) })
    }

    /// Waits up to `timeoutMs` for events; a JSON array of at most `maxEvents`
    /// stored events, oldest first (`[]` when the time runs out).
    #[napi]
    pub async fn poll(&self, max_events: u32, timeout_ms: f64) -> Result<String> {
        let s = self.inner.clone();
        deferred(call(async move { s.poll_json(max_events, ms(timeout_ms)).await })).await
    }

    /// Acknowledges every event up to `sequence`; the consumer's stored offset.
    #[napi]
    pub async fn ack(&self, sequence: i64) -> Result<i64> {
        let s = self.inner.clone();
        deferred(call(async move { s.ack(sequence).await })).await
    }

    /// Starts again after the acknowledged sequence (redelivers what was not acked).
    #[napi]
    pub async fn rewind(&self) -> Result<()> {
        let s = self.inner.clone();
        deferred(call(async move {
            s.rewind().await;
            Ok(())
        }))
        .await
    }

    /// The consumer's name.
    #[napi(getter)]
    pub fn consumer(&self) -> String {
        self.inner.consumer().to_string()
    }
}
