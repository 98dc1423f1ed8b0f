//! Domain events: what templates declare under `publishes_events`, published after
//! a step's result is recorded. Only in-process delivery (`fast`) exists so far;
//! `durable` and `broadcast` events are delivered in-process too until the
//! durable events table lands.

use crate::contract::DomainEventMode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

/// How many domain events a slow subscriber may fall behind before it misses some.
pub const DOMAIN_EVENT_CAPACITY: usize = 1024;

/// A published domain event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainEvent {
    /// Fresh UUIDv7.
    pub event_id: Uuid,
    /// Dotted name, e.g. `order.shipped`.
    pub name: String,
    /// The payload (the step's result by default).
    pub payload: Value,
    /// Delivery mode (`fast` for events a template declares).
    pub mode: DomainEventMode,
    /// The task it is about, when published from a step.
    pub task_uuid: Option<Uuid>,
    /// The step it is about, when published from a step.
    pub step_uuid: Option<Uuid>,
    /// Step name, when published from a step.
    pub step_name: Option<String>,
    /// Namespace, when published from a step.
    pub namespace: Option<String>,
    /// Correlation id of the task, when published from a step.
    pub correlation_id: Option<Uuid>,
    /// When it fired (epoch ms).
    pub fired_at: i64,
}

/// The in-process domain event bus. Publishing never blocks and never fails a step.
#[derive(Debug, Clone)]
pub struct DomainEventBus {
    tx: broadcast::Sender<DomainEvent>,
}

impl Default for DomainEventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(DOMAIN_EVENT_CAPACITY).0,
        }
    }
}

impl DomainEventBus {
    /// Publishes an event; returns false when nobody listens.
    pub fn publish(&self, event: DomainEvent) -> bool {
        self.tx.send(event).is_ok()
    }

    /// Subscribes to events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}
