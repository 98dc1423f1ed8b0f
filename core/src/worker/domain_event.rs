//! DomainEvent: publishes the events a step declares once its result is written.
//! Publishing is best effort and never fails or delays a step.

use super::template_cache::TemplateCache;
use crate::events::domain::{DomainEvent, DomainEventBus};
use crate::template::EventCondition;
use uuid::Uuid;

/// Publishes declared domain events.
#[derive(Debug, Clone)]
pub struct DomainEventPublisher {
    bus: DomainEventBus,
    templates: TemplateCache,
}

/// A written result, as the publisher needs it.
#[derive(Debug, Clone)]
pub struct WrittenResult<'a> {
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
    /// Whether the attempt succeeded.
    pub success: bool,
    /// The payload (the step's result).
    pub payload: &'a serde_json::Value,
    /// Time of the write.
    pub now: i64,
}

impl DomainEventPublisher {
    /// A publisher on `bus` reading declarations from `templates`.
    pub fn new(bus: DomainEventBus, templates: TemplateCache) -> Self {
        Self { bus, templates }
    }

    /// Publishes the declared events whose condition matches; returns how many.
    pub fn publish_for(&self, r: &WrittenResult<'_>) -> usize {
        let declarations = self
            .templates
            .step_events(r.namespace, r.task_name, r.task_version, r.template_step_name);
        let mut published = 0;
        for d in declarations {
            let fires = match d.condition {
                EventCondition::Success => r.success,
                EventCondition::Failure => !r.success,
                EventCondition::Always => true,
            };
            if fires {
                self.bus.publish(DomainEvent {
                    event_id: Uuid::now_v7(),
                    name: d.name.clone(),
                    payload: r.payload.clone(),
                    mode: crate::contract::DomainEventMode::Fast,
                    task_uuid: Some(r.task_uuid),
                    step_uuid: Some(r.step_uuid),
                    step_name: Some(r.step_name.to_string()),
                    namespace: Some(r.namespace.to_string()),
                    correlation_id: Some(r.correlation_id),
                    fired_at: r.now,
                });
                published += 1;
            }
        }
        published
    }
}
