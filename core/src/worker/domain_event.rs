//! DomainEvent: the events a result fires. Before the write, [`DomainEventPublisher::prepare`]
//! collects the events a step declares whose condition matches and the events
//! its handler published explicitly, checks each payload against the schema the
//! step declares for that name, and splits them by mode: durable halves ride in
//! the result's transaction (`StepCompletion::events`), fast halves wait for the
//! write. After the write, [`DomainEventPublisher::publish_fast`] sends the fast
//! halves of applied results to the in-process bus. A rejected payload is logged
//! and counted; it never fails or delays the step (see ADR 0010).

use super::template_cache::TemplateCache;
use crate::contract::DomainEventMode;
use crate::events::domain::{schema_problems, DomainEvent, DomainEventBus};
use crate::metrics::SharedMetrics;
use crate::state::StepState;
use crate::store::{EventGate, PendingDomainEvent};
use crate::template::EventCondition;
use uuid::Uuid;

/// Prepares and publishes domain events.
#[derive(Debug, Clone)]
pub struct DomainEventPublisher {
    bus: DomainEventBus,
    templates: TemplateCache,
    metrics: SharedMetrics,
}

/// A finished attempt, as the publisher needs it.
#[derive(Debug, Clone)]
pub struct FinishedAttempt<'a> {
    /// The task.
    pub task_uuid: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// Step name.
    pub step_name: &'a str,
    /// Template step name.
    pub template_step_name: &'a str,
    /// Namespace of the task's template.
    pub namespace: &'a str,
    /// Template name.
    pub task_name: &'a str,
    /// Template version.
    pub task_version: &'a str,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Whether the handler succeeded.
    pub success: bool,
    /// The payload of declared events (the step's result).
    pub payload: &'a serde_json::Value,
    /// Events the handler published with its result.
    pub published: &'a [DomainEvent],
    /// Now.
    pub now: i64,
}

/// The events of one attempt, split by delivery path.
#[derive(Debug, Clone, Default)]
pub struct PreparedEvents {
    /// Written in the result's transaction (durable and broadcast events).
    pub durable: Vec<PendingDomainEvent>,
    /// Published in-process once the result is written (fast and broadcast events).
    pub fast: Vec<PendingDomainEvent>,
}

/// Whether an applied state passes a gate.
pub fn gate_passes(gate: EventGate, state: StepState) -> bool {
    gate.passes(state)
}

impl DomainEventPublisher {
    /// A publisher on `bus` reading declarations from `templates`, counting in `metrics`.
    pub fn new(bus: DomainEventBus, templates: TemplateCache, metrics: SharedMetrics) -> Self {
        Self {
            bus,
            templates,
            metrics,
        }
    }

    /// The declared events an operator's resolution fires: `complete_step` fires the
    /// step's `success` and `always` declarations with the supplied result as their
    /// payload (checked against their schemas), as a handler's success would; the
    /// other resolutions fire none. Reads the entry's task (and, when this process
    /// did not load it, its template) from `store`; the step's template step name
    /// comes from the entry's snapshot (the step's own name for entries recorded
    /// before the snapshot carried it).
    pub async fn resolution_events(
        &self,
        store: &crate::store::SharedStore,
        entry_id: Uuid,
        action: &crate::store::DlqAction,
        now: i64,
    ) -> Result<PreparedEvents, crate::store::StoreError> {
        let crate::store::DlqAction::CompleteStep { step_uuid, result } = action else {
            return Ok(PreparedEvents::default());
        };
        let Some(entry) = store.dlq_get(entry_id).await? else {
            return Ok(PreparedEvents::default());
        };
        let Some(task) = store.task_get(entry.task_uuid).await? else {
            return Ok(PreparedEvents::default());
        };
        let Some(step) = task.steps.iter().find(|s| s.step_uuid == *step_uuid) else {
            return Ok(PreparedEvents::default());
        };
        let template_step_name = entry.snapshot["steps"]
            .as_array()
            .and_then(|steps| {
                steps
                    .iter()
                    .find(|s| s["step_uuid"].as_str() == Some(step_uuid.to_string().as_str()))
            })
            .and_then(|s| s["template_step_name"].as_str())
            .unwrap_or(&step.name)
            .to_string();
        self.ensure_template(&task.namespace, &task.name, &task.version).await;
        Ok(self.prepare(&FinishedAttempt {
            task_uuid: task.task_uuid,
            step_uuid: *step_uuid,
            step_name: &step.name,
            template_step_name: &template_step_name,
            namespace: &task.namespace,
            task_name: &task.name,
            task_version: &task.version,
            correlation_id: task.correlation_id,
            success: true,
            payload: result,
            published: &[],
            now,
        }))
    }

    /// Makes sure the declarations of `namespace/task_name@task_version` are at hand
    /// (read from the database when this process did not load the template).
    pub async fn ensure_template(&self, namespace: &str, task_name: &str, task_version: &str) {
        self.templates.ensure_loaded(namespace, task_name, task_version).await;
    }

    /// Checks a payload against the schema step `template_step_name` of
    /// `namespace/task_name@task_version` declares for event `name` (Ok when it
    /// declares none). A failure is logged and counted with `source`
    /// (`declared` or `explicit`) and returned as a message.
    #[allow(clippy::too_many_arguments)]
    pub fn check_payload(
        &self,
        namespace: &str,
        task_name: &str,
        task_version: &str,
        template_step_name: &str,
        name: &str,
        payload: &serde_json::Value,
        source: &str,
    ) -> Result<(), String> {
        let Some(schema) = self
            .templates
            .event_schema(namespace, task_name, task_version, template_step_name, name)
        else {
            return Ok(());
        };
        let Some(problems) = schema_problems(&schema, payload) else {
            return Ok(());
        };
        self.metrics
            .domain_events_rejected
            .with_label_values(&[namespace, name, source])
            .inc();
        let message = format!("domain event `{name}` rejected: its payload fails the declared schema: {problems}");
        tracing::warn!(namespace, event = name, source, step = template_step_name, "{message}");
        Err(message)
    }

    /// The events an attempt fires: declared events whose condition matches the
    /// handler's outcome (payload: the step's result) and the handler's explicit
    /// publishes (written whatever the result did), each checked against its schema.
    pub fn prepare(&self, a: &FinishedAttempt<'_>) -> PreparedEvents {
        let mut out = PreparedEvents::default();
        let declarations = self
            .templates
            .step_events(a.namespace, a.task_name, a.task_version, a.template_step_name);
        for d in declarations {
            let gate = match d.condition {
                EventCondition::Success if a.success => EventGate::Complete,
                EventCondition::Failure if !a.success => EventGate::Failed,
                EventCondition::Always => EventGate::Applied,
                _ => continue,
            };
            if self
                .check_payload(
                    a.namespace,
                    a.task_name,
                    a.task_version,
                    a.template_step_name,
                    &d.name,
                    a.payload,
                    "declared",
                )
                .is_err()
            {
                continue;
            }
            let event = DomainEvent {
                event_id: Uuid::now_v7(),
                name: d.name.clone(),
                payload: a.payload.clone(),
                mode: d.delivery_mode.into(),
                task_uuid: Some(a.task_uuid),
                step_uuid: Some(a.step_uuid),
                step_name: Some(a.step_name.to_string()),
                namespace: Some(a.namespace.to_string()),
                correlation_id: Some(a.correlation_id),
                fired_at: a.now,
            };
            route(&mut out, event, gate);
        }
        for e in a.published {
            if self
                .check_payload(
                    a.namespace,
                    a.task_name,
                    a.task_version,
                    a.template_step_name,
                    &e.name,
                    &e.payload,
                    "explicit",
                )
                .is_ok()
            {
                route(&mut out, e.clone(), EventGate::Applied);
            }
        }
        out
    }

    /// Publishes to the in-process bus the fast halves whose gate the step's
    /// applied state passes; returns how many.
    pub fn publish_fast(&self, events: Vec<PendingDomainEvent>, state: StepState) -> usize {
        let mut published = 0;
        for p in events.into_iter().filter(|p| gate_passes(p.gate, state)) {
            self.count(&p.event, "fast");
            self.bus.publish(p.event);
            published += 1;
        }
        published
    }

    /// After a result was written and its step reached `state`: publishes the fast
    /// halves and counts the durable ones that the state's gate let through.
    pub fn after_write(&self, fast: Vec<PendingDomainEvent>, durable: &[PendingDomainEvent], state: StepState) {
        self.publish_fast(fast, state);
        for p in durable.iter().filter(|p| gate_passes(p.gate, state)) {
            self.count(&p.event, "durable");
        }
    }

    /// Publishes one event to the in-process bus now (an explicit fast publish).
    pub fn publish_now(&self, event: DomainEvent) {
        self.count(&event, "fast");
        self.bus.publish(event);
    }

    /// Counts a delivered event.
    pub fn count(&self, event: &DomainEvent, mode: &str) {
        self.metrics
            .domain_events_published
            .with_label_values(&[event.namespace.as_deref().unwrap_or(""), mode])
            .inc();
    }
}

/// Puts an event on the paths its mode asks for.
fn route(out: &mut PreparedEvents, event: DomainEvent, gate: EventGate) {
    match event.mode {
        DomainEventMode::Durable => out.durable.push(PendingDomainEvent { event, gate }),
        DomainEventMode::Fast => out.fast.push(PendingDomainEvent { event, gate }),
        DomainEventMode::Broadcast => {
            out.fast.push(PendingDomainEvent {
                event: event.clone(),
                gate,
            });
            out.durable.push(PendingDomainEvent { event, gate });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_follow_the_applied_state() {
        assert!(gate_passes(EventGate::Complete, StepState::Complete));
        assert!(!gate_passes(EventGate::Complete, StepState::Error));
        assert!(gate_passes(EventGate::Failed, StepState::WaitingForRetry));
        assert!(!gate_passes(EventGate::Failed, StepState::Complete));
        assert!(gate_passes(EventGate::Applied, StepState::Error));
    }
}
