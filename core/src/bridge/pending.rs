//! The step events a bridge has handed to its host and not yet heard back about,
//! and the sweep that fails the ones whose deadline passes (so a hung or lost
//! host handler never keeps a slot: its step fails as `timeout` and is retried).

use crate::store::ClaimedStep;
use crate::worker::channels::CompletionMessage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use uuid::Uuid;

/// One handed-out event.
#[derive(Debug)]
pub struct PendingEvent {
    /// The claimed step.
    pub step: ClaimedStep,
    /// Its slot, freed once the result is written.
    pub permit: OwnedSemaphorePermit,
    /// Where its result goes.
    pub completion: mpsc::Sender<CompletionMessage>,
    /// Notify after freeing the slot without a result.
    pub slot_freed: Arc<Notify>,
    /// When the attempt times out (epoch ms); moved by `extend_lease`.
    pub deadline_ms: i64,
    /// When it was handed out.
    pub handed_out: Instant,
    /// Domain events the host published about this step, delivered with its
    /// result (durable ones in the result's transaction).
    pub published: Vec<crate::events::domain::DomainEvent>,
}

/// Handed-out events by event id.
#[derive(Debug, Default, Clone)]
pub struct PendingEvents {
    inner: Arc<Mutex<HashMap<Uuid, PendingEvent>>>,
}

impl PendingEvents {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, PendingEvent>> {
        // A panic while holding this lock leaves a consistent map: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a handed-out event.
    pub fn insert(&self, event_id: Uuid, event: PendingEvent) {
        self.map().insert(event_id, event);
    }

    /// Takes an event out (its result arrived, or it is released).
    pub fn take(&self, event_id: &Uuid) -> Option<PendingEvent> {
        self.map().remove(event_id)
    }

    /// Reads an event.
    pub fn with<R>(&self, event_id: &Uuid, f: impl FnOnce(&mut PendingEvent) -> R) -> Option<R> {
        self.map().get_mut(event_id).map(f)
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Takes every event whose deadline is at or before `now_ms`.
    pub fn take_expired(&self, now_ms: i64) -> Vec<(Uuid, PendingEvent)> {
        let mut map = self.map();
        let expired: Vec<Uuid> = map
            .iter()
            .filter(|(_, e)| e.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| map.remove(&id).map(|e| (id, e)))
            .collect()
    }

    /// Drops every event (after shutdown).
    pub fn clear(&self) {
        self.map().clear();
    }
}
