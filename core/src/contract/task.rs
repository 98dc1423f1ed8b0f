//! Task requests (what a client submits) and task views (what it reads back).
//! The view is the store's [`TaskView`](crate::store::TaskView).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A request to run a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Namespace of the template.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version; the highest registered one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The task context (validated against the template's input schema).
    #[serde(default = "empty_object")]
    pub context: Value,
    /// Makes resubmission safe: the same key returns the same task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Links the task to the caller's traces; a new one is made when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl TaskRequest {
    /// `namespace/name[@version]`.
    pub fn template_key(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/{}@{}", self.namespace, self.name, v),
            None => format!("{}/{}", self.namespace, self.name),
        }
    }
}
