//! `Tasker::Native::EventSubscriber`: [`tasker_core::bridge::BridgeSubscriber`]
//! one-to-one. `poll` waits in Rust with the GVL released (and stops at once on
//! an interrupt), as `poll_step_events` does; events cross as JSON text (the Ruby
//! layer, `Tasker::EventSubscriber`, decodes them).

use crate::convert::{blocking, guarded, interruptible};
use crate::worker::RbBridge;
use magnus::{Error, Ruby};
use std::sync::Arc;
use tasker_core::bridge::BridgeSubscriber;

/// A named consumer of durable domain events, read at least once.
#[magnus::wrap(class = "Tasker::Native::EventSubscriber", free_immediately, size)]
pub struct RbEventSubscriber {
    inner: Arc<BridgeSubscriber>,
}

impl RbEventSubscriber {
    /// `Tasker::Native::EventSubscriber.open(bridge, consumer, name_pattern)`: a
    /// subscriber on the bridge's database reading as `consumer`; with
    /// `name_pattern` (or nil), only events whose name matches it.
    pub fn open(ruby: &Ruby, bridge: &RbBridge, consumer: String, name_pattern: Option<String>) -> Result<Self, Error> {
        let inner = guarded(ruby, || {
            bridge.bridge().event_subscriber(&consumer, name_pattern.as_deref())
        })?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// A JSON array of at most `max_events` stored events, oldest first, waiting up
    /// to `timeout_ms` for the first (`[]` on timeout and when an interrupt stops
    /// the wait).
    pub fn poll(ruby: &Ruby, rb_self: &Self, max_events: u32, timeout_ms: u64) -> Result<String, Error> {
        let s = rb_self.inner.clone();
        let polled = interruptible(ruby, move || async move { s.poll_json(max_events, timeout_ms).await })?;
        Ok(polled.unwrap_or_else(|| "[]".to_string()))
    }

    /// Acknowledges every event up to `sequence`; the consumer's stored offset.
    pub fn ack(ruby: &Ruby, rb_self: &Self, sequence: i64) -> Result<i64, Error> {
        let s = rb_self.inner.clone();
        blocking(ruby, move || async move { s.ack(sequence).await })
    }

    /// Starts again after the acknowledged sequence (redelivers what was not acked).
    pub fn rewind(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        let s = rb_self.inner.clone();
        blocking(ruby, move || async move {
            s.rewind().await;
            Ok(())
        })
    }

    /// The consumer's name.
    pub fn consumer(&self) -> String {
        self.inner.consumer().to_string()
    }
}
