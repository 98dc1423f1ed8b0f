//! A step event: one claimed step handed to a host language's handler.

use crate::store::ClaimedStep;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Which handler runs a step, as the template declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    /// Registry key (a registered name or an import path).
    pub callable: String,
    /// Entry point on the handler (default `call`).
    pub method: String,
    /// The template's `handler.initialization` (handler configuration).
    pub initialization: Value,
}

/// One claimed step, ready to run. Complete it with a step result
/// quoting `event_id`, release it, or let its deadline pass (a `timeout` failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepEvent {
    /// Identifies this hand-out; results quote it.
    pub event_id: Uuid,
    /// The task.
    pub task_uuid: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// Correlation id of the task: put it in every log line.
    pub correlation_id: Uuid,
    /// Namespace of the task's template.
    pub namespace: String,
    /// Template name.
    pub task_name: String,
    /// Template version.
    pub task_version: String,
    /// Step name.
    pub step_name: String,
    /// The template step it was made from (equals `step_name` for declared steps).
    pub template_step_name: String,
    /// `standard`, `decision`, `deferred_convergence`, `batchable` or `batch_worker`.
    pub step_type: String,
    /// The handler to run.
    pub handler: HandlerSpec,
    /// The task's context (its input).
    pub context: Value,
    /// Results of the parent steps, by step name.
    pub dependency_results: BTreeMap<String, Value>,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts allowed, counting the first.
    pub max_attempts: u32,
    /// Whether a failed attempt may be retried at all (the template's `retry.retryable`).
    pub retryable: bool,
    /// Time allowed for this attempt, in ms.
    pub timeout_ms: i64,
    /// When this attempt times out (epoch ms); `extend_lease` moves it.
    pub deadline_ms: i64,
    /// The last checkpoint a batch worker saved on an earlier attempt, if any:
    /// `{"cursor": ..., "data": ..., "saved_at_ms": ...}`.
    pub checkpoint: Option<Value>,
}

impl StepEvent {
    /// The event for a claimed step.
    pub fn from_claim(event_id: Uuid, step: &ClaimedStep) -> Self {
        Self {
            event_id,
            task_uuid: step.task_uuid,
            step_uuid: step.step_uuid,
            correlation_id: step.correlation_id,
            namespace: step.task_namespace.clone(),
            task_name: step.task_name.clone(),
            task_version: step.task_version.clone(),
            step_name: step.name.clone(),
            template_step_name: step.template_step_name.clone(),
            step_type: step.step_type.clone(),
            handler: HandlerSpec {
                callable: step.handler_callable.clone(),
                method: step.handler_method.clone(),
                initialization: step.handler_initialization.clone(),
            },
            context: step.context.clone(),
            dependency_results: step.dependency_results.clone(),
            attempt: step.attempt,
            max_attempts: step.retry.max_attempts,
            retryable: step.retry.retryable,
            timeout_ms: step.timeout_ms,
            deadline_ms: step.deadline_at,
            checkpoint: step.checkpoint.clone(),
        }
    }
}
