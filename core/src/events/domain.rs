//! Domain events: what templates declare under `publishes_events` and what
//! handlers publish explicitly (ADR 0010). Three delivery modes:
//! - `durable`: a row in the `domain_events` table, written in the same transaction
//!   as the step result that fires it (`store::domain_events`), read at least once
//!   by named consumers ([`super::subscriber::EventSubscriber`], `tasker events tail`,
//!   every binding's `EventSubscriber`);
//! - `fast`: this process's in-process bus ([`DomainEventBus`]), after the result
//!   is written; best effort (a lagging subscriber misses events) and never fails
//!   or delays a step;
//! - `broadcast`: both, with one `event_id`.

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
    /// Delivery mode.
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

/// Why a payload fails a compiled schema (`INSTANCE_PATH: MESSAGE`, joined by
/// `; `), or None when it passes.
pub fn schema_problems(schema: &jsonschema::Validator, payload: &Value) -> Option<String> {
    let problems: Vec<String> = schema
        .iter_errors(payload)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// A durable event as consumers read it: the event and its place in the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredDomainEvent {
    /// Position in the events table: increases in commit order; consumers
    /// acknowledge up to a sequence.
    pub sequence: i64,
    /// The event.
    #[serde(flatten)]
    pub event: DomainEvent,
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
