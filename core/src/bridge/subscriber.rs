//! The bridge's durable event subscriber: [`EventSubscriber`] with JSON in and
//! out, as every binding's `EventSubscriber` wraps it (`poll` answers a JSON array
//! of `stored_domain_event`s; see `proto-contract/`).

use super::{to_json, Bridge, BridgeError};
use crate::events::subscriber::EventSubscriber;
use std::time::Duration;

/// A named consumer of durable domain events, opened from a [`Bridge`].
#[derive(Debug)]
pub struct BridgeSubscriber {
    inner: EventSubscriber,
}

impl Bridge {
    /// A durable event subscriber reading as `consumer` (a non-empty name),
    /// optionally only events whose name matches `name_pattern` (`*` matches
    /// anything). Works on any bridge, a client-only one included.
    pub fn event_subscriber(
        &self,
        consumer: &str,
        name_pattern: Option<&str>,
    ) -> Result<BridgeSubscriber, BridgeError> {
        self.check_usable()?;
        if consumer.trim().is_empty() {
            return Err(BridgeError::InvalidInput(
                "an event subscriber needs a consumer name".into(),
            ));
        }
        Ok(BridgeSubscriber {
            inner: self
                .engine
                .event_subscriber(consumer)
                .with_name_pattern(name_pattern.map(String::from)),
        })
    }
}

impl BridgeSubscriber {
    /// The consumer's name.
    pub fn consumer(&self) -> &str {
        self.inner.consumer()
    }

    /// Waits up to `timeout_ms` for events; a JSON array of at most `max_events`
    /// stored events, oldest first (`[]` when the time runs out).
    pub async fn poll_json(&self, max_events: u32, timeout_ms: u64) -> Result<String, BridgeError> {
        let events = self.inner.poll(max_events, Duration::from_millis(timeout_ms)).await?;
        to_json(&events)
    }

    /// Acknowledges every event up to `sequence`; answers the stored offset.
    pub async fn ack(&self, sequence: i64) -> Result<i64, BridgeError> {
        Ok(self.inner.ack(sequence).await?)
    }

    /// Starts again after the acknowledged sequence (redelivers what was not acked).
    pub async fn rewind(&self) {
        self.inner.rewind().await
    }
}
