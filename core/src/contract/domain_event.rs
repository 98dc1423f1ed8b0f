//! Domain events a handler publishes through the bridge, and their delivery modes
//! (ADR 0010).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a domain event is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainEventMode {
    /// Stored in the events table (with the step's result when published from a
    /// step), read at least once by named consumers.
    Durable,
    /// To this process's in-process subscribers, best effort.
    Fast,
    /// Both: stored, and to in-process subscribers, with one `event_id`.
    Broadcast,
}

impl std::str::FromStr for DomainEventMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "durable" => Ok(Self::Durable),
            "fast" => Ok(Self::Fast),
            "broadcast" => Ok(Self::Broadcast),
            other => Err(format!(
                "unknown domain event mode `{other}` (durable, fast, broadcast)"
            )),
        }
    }
}

/// A domain event a handler publishes (the arguments of `publish_domain_event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishDomainEvent {
    /// Dotted name, e.g. `order.shipped`.
    pub name: String,
    /// The payload.
    pub payload: Value,
    /// Delivery mode (default `fast`).
    #[serde(default = "fast")]
    pub mode: DomainEventMode,
    /// The step event it is about: the published event carries that step's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<uuid::Uuid>,
}

fn fast() -> DomainEventMode {
    DomainEventMode::Fast
}
