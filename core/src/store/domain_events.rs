//! Durable domain events, the backend-independent half: what a result batch asks
//! the store to write with its results (each event gated on the state its step
//! reaches), the parameters of polling and acknowledging, the JSON rows both
//! backends' insert statements read, and the in-process wake-up signal that a
//! commit with new events raises. See ADR 0010.

use super::StepCompletion;
use crate::events::domain::{DomainEvent, StoredDomainEvent};
use serde_json::{json, Value};
use tokio::sync::watch;

/// On which applied state of its step a durable event is written. Events ride
/// with a result and are written in its transaction only when that result is
/// applied (a stale claim, a duplicate or a rolled-back transaction writes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventGate {
    /// Whatever the result did (explicit publishes, `always` declarations).
    Applied,
    /// Only when the step completed (`success` declarations).
    Complete,
    /// Only when the step failed, for good or to retry (`failure` declarations).
    Failed,
}

impl EventGate {
    /// The name the insert statements compare with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    /// Whether a step that reached `state` fires an event behind this gate.
    pub fn passes(self, state: crate::state::StepState) -> bool {
        match self {
            Self::Applied => true,
            Self::Complete => state == crate::state::StepState::Complete,
            Self::Failed => state != crate::state::StepState::Complete,
        }
    }
}

/// A durable (or broadcast) event waiting for its step's result to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDomainEvent {
    /// The event (its `step_uuid` is the step whose result carries it).
    pub event: DomainEvent,
    /// When it is written.
    pub gate: EventGate,
}

/// Parameters of `Store::domain_event_poll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEventPollParams {
    /// The consumer's name; its acknowledged sequence is where reading starts
    /// when `after` is None.
    pub consumer: String,
    /// Read events with a sequence above this one (None: above the consumer's
    /// acknowledged sequence, 0 for a new consumer).
    pub after: Option<i64>,
    /// Most events returned.
    pub limit: u32,
    /// Only events whose name matches this glob (`*` matches any run of characters,
    /// e.g. `order.*`).
    pub name_pattern: Option<String>,
}

/// Which durable events `Store::domain_event_prune` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEventPruneParams {
    /// Only events stored before this time (epoch milliseconds).
    pub stored_before: i64,
    /// Only events every known consumer has acknowledged (none while no consumer
    /// is known). False deletes by age alone, read or not.
    pub acknowledged_only: bool,
    /// Most events deleted by one call (oldest first); call again until it answers 0.
    pub limit: u32,
}

/// A `*` glob as a SQL `LIKE` pattern with `\` as the escape character.
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
}

/// A `*` glob as an SQLite `GLOB` pattern (case-sensitive like PostgreSQL's
/// `LIKE`, unlike SQLite's): `?` and `[` are matched literally.
pub fn sqlite_glob(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            other => out.push(other),
        }
    }
    out
}

/// One event as the insert statements read it; JSON payloads travel as text so
/// neither backend re-renders numbers.
fn event_row(e: &DomainEvent, gate: Option<EventGate>) -> Value {
    json!({
        "event_id": e.event_id, "name": e.name, "payload": e.payload.to_string(),
        "mode": e.mode, "task_uuid": e.task_uuid, "step_uuid": e.step_uuid, "step_name": e.step_name,
        "namespace": e.namespace, "correlation_id": e.correlation_id, "fired_at": e.fired_at,
        "gate": gate.map(EventGate::as_str),
    })
}

/// The events a result batch carries, as the JSON array its insert reads (None
/// when the batch carries none, so the statement is skipped).
pub fn batch_payload(completions: &[&StepCompletion]) -> Option<String> {
    let rows: Vec<Value> = completions
        .iter()
        .flat_map(|c| c.events.iter().map(|p| event_row(&p.event, Some(p.gate))))
        .collect();
    (!rows.is_empty()).then(|| Value::Array(rows).to_string())
}

/// Events written on their own (an explicit publish naming no held step).
pub fn immediate_payload(events: &[DomainEvent]) -> String {
    Value::Array(events.iter().map(|e| event_row(e, None)).collect()).to_string()
}

/// Decodes one stored event from the JSON object both backends' poll statements
/// build (`payload` as JSON text on SQLite, as JSON on PostgreSQL).
pub fn stored_from_json(mut row: Value) -> Result<StoredDomainEvent, super::StoreError> {
    if let Some(Value::String(text)) = row.get("payload") {
        let parsed: Value = serde_json::from_str(text)?;
        row["payload"] = parsed;
    }
    Ok(serde_json::from_value(row)?)
}

/// Wakes subscribers in this process when a commit stored events: a counter
/// bumped after each such commit. A subscriber marks the value seen before it
/// polls, so a commit between its poll and its wait is never missed.
#[derive(Debug)]
pub struct EventSignal {
    tx: watch::Sender<u64>,
}

impl Default for EventSignal {
    fn default() -> Self {
        Self {
            tx: watch::channel(0).0,
        }
    }
}

impl EventSignal {
    /// Signals that events were committed.
    pub fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver for subscribers.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(like_pattern("order.*"), "order.%");
        assert_eq!(like_pattern("*"), "%");
        assert_eq!(like_pattern("a_b%c"), "a\\_b\\%c");
        assert_eq!(sqlite_glob("order.*"), "order.*");
        assert_eq!(sqlite_glob("a?[b"), "a[?][[]b");
    }

    #[test]
    fn a_batch_without_events_writes_nothing() {
        assert_eq!(batch_payload(&[]), None);
    }
}
