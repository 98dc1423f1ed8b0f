//! EventSubscriber: reads durable domain events as a named consumer, at least
//! once. `poll` hands out the events after the last one it handed out in this
//! session (the first poll starts after the consumer's acknowledged sequence);
//! `ack` stores that the consumer has handled everything up to a sequence. A new
//! subscriber with the same consumer name (another process, a restart) starts
//! again after the acknowledged sequence, so events handed out and not
//! acknowledged are delivered again; consumers with different names are
//! independent. Every binding's `EventSubscriber` wraps this one.
//!
//! Waiting: `poll` returns as soon as events exist. While none do, it sleeps until
//! this process commits events (an in-process signal), until another process does
//! (PostgreSQL with LISTEN: the insert trigger's NOTIFY), or until the polling
//! interval ends ([`DEFAULT_POLL_INTERVAL`]; the only way to see other processes'
//! events on SQLite), whichever comes first.

use crate::clock::SharedClock;
use crate::events::domain::StoredDomainEvent;
use crate::store::{DomainEventPollParams, SharedStore, StoreError};
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

/// How often a waiting poll reads the table when no wake-up comes (events
/// committed by other processes on SQLite, or on PostgreSQL without LISTEN).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Most events one poll returns.
pub const MAX_POLL_EVENTS: u32 = 1000;

#[derive(Debug)]
struct Session {
    /// The last sequence handed out in this session (None: start after the
    /// consumer's acknowledged sequence).
    cursor: Option<i64>,
    wakeups: watch::Receiver<u64>,
}

/// A named consumer of durable domain events.
#[derive(Debug)]
pub struct EventSubscriber {
    store: SharedStore,
    clock: SharedClock,
    consumer: String,
    name_pattern: Option<String>,
    poll_interval: Duration,
    session: Mutex<Session>,
}

impl EventSubscriber {
    /// A subscriber reading as `consumer`.
    pub fn new(store: SharedStore, clock: SharedClock, consumer: &str) -> Self {
        let wakeups = store.domain_event_wakeups();
        Self {
            store,
            clock,
            consumer: consumer.to_string(),
            name_pattern: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            session: Mutex::new(Session { cursor: None, wakeups }),
        }
    }

    /// Only events whose name matches `pattern` (`*` matches any run of
    /// characters: `order.*`, `*.failed`).
    pub fn with_name_pattern(mut self, pattern: Option<String>) -> Self {
        self.name_pattern = pattern.filter(|p| !p.is_empty() && p != "*");
        self
    }

    /// Starts this session after `sequence` instead of after the consumer's
    /// acknowledged sequence (`starting_after(0)`: every stored event).
    pub fn starting_after(mut self, sequence: i64) -> Self {
        self.session.get_mut().cursor = Some(sequence);
        self
    }

    /// How often a waiting poll reads the table without a wake-up.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Waits up to `timeout` for events and returns at most `max_events` (capped
    /// at [`MAX_POLL_EVENTS`]), oldest first; empty when the time runs out.
    pub async fn poll(&self, max_events: u32, timeout: Duration) -> Result<Vec<StoredDomainEvent>, StoreError> {
        let limit = max_events.clamp(1, MAX_POLL_EVENTS);
        let deadline = Instant::now() + timeout;
        let mut session = self.session.lock().await;
        loop {
            // Mark the signal seen before reading, so a commit after the read wakes us.
            session.wakeups.borrow_and_update();
            let events = self
                .store
                .domain_event_poll(DomainEventPollParams {
                    consumer: self.consumer.clone(),
                    after: session.cursor,
                    limit,
                    name_pattern: self.name_pattern.clone(),
                })
                .await?;
            if let Some(last) = events.last() {
                session.cursor = Some(last.sequence);
                return Ok(events);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(events);
            }
            let nap = (deadline - now).min(self.poll_interval);
            tokio::select! {
                changed = session.wakeups.changed() => {
                    if changed.is_err() {
                        // The store is gone; fall back to the interval.
                        tokio::time::sleep(nap).await;
                    }
                }
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Records that this consumer has handled every event up to `up_to_sequence`;
    /// answers the consumer's stored offset (it never moves back).
    pub async fn ack(&self, up_to_sequence: i64) -> Result<i64, StoreError> {
        self.store
            .domain_event_ack(&self.consumer, up_to_sequence, self.clock.now_ms())
            .await
    }

    /// Forgets what this session handed out: the next poll starts again after
    /// the consumer's acknowledged sequence (redelivering what was not acked).
    pub async fn rewind(&self) {
        self.session.lock().await.cursor = None;
    }
}
