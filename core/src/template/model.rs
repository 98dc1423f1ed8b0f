//! The task template data model: what a YAML template may say, with the defaults
//! that apply when it says nothing. Parsing and validation live in `load` and
//! `validate`; this file only describes the shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One task template: a named, versioned DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Namespace the template belongs to; workers serve namespaces.
    pub namespace: String,
    /// Template name, unique with `namespace` and `version`.
    pub name: String,
    /// Semantic version; "latest" means the highest semver.
    pub version: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema the task context must satisfy at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// How duplicate task submissions are recognised.
    #[serde(default)]
    pub identity_strategy: IdentityStrategy,
    /// Staleness thresholds and what happens to failed tasks.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// The steps of the DAG.
    pub steps: Vec<StepTemplate>,
}

impl TaskTemplate {
    /// The step called `name`, if the template has one.
    pub fn step(&self, name: &str) -> Option<&StepTemplate> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The steps with no dependencies, in declaration order: the ones a new task
    /// can start with.
    pub fn roots(&self) -> Vec<&StepTemplate> {
        self.steps.iter().filter(|s| s.dependencies.is_empty()).collect()
    }

    /// `namespace/name@version`, the key the registry resolves exactly.
    pub fn key(&self) -> String {
        format!("{}/{}@{}", self.namespace, self.name, self.version)
    }

    /// The namespace whose workers run `step`: its own `namespace`, else the
    /// template's.
    pub fn step_namespace<'a>(&'a self, step: &'a StepTemplate) -> &'a str {
        step.namespace.as_deref().unwrap_or(&self.namespace)
    }

    /// Every namespace a worker must serve to run all of this template's steps,
    /// in first-use order (the template's first when a step uses it).
    pub fn step_namespaces(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            let ns = self.step_namespace(s);
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        out
    }
}

/// How a task's identity (for deduplication) is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStrategy {
    /// Same template version and same context means the same task.
    #[default]
    Strict,
    /// The caller must pass an idempotency key.
    CallerProvided,
    /// Every submission creates a new task.
    AlwaysUnique,
}

/// Staleness thresholds and failure handling for a template's tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Longest a task may live before it counts as stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<u64>,
    /// Longest a task may wait for dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_dependencies_minutes: Option<u64>,
    /// Longest a task may wait for a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_retry_minutes: Option<u64>,
    /// Longest a task may have steps in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_in_process_minutes: Option<u64>,
    /// Keep a task whose steps failed permanently in `blocked_by_failures` for an
    /// operator instead of moving it to `error`.
    #[serde(default)]
    pub hold_failed_tasks: bool,
}

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTemplate {
    /// Step name, unique within the template.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The namespace whose workers run this step (its routing key); none means
    /// the template's namespace. Lets one task's steps run in different worker
    /// pools, e.g. in different languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What kind of step this is.
    #[serde(default, rename = "type")]
    pub step_type: StepType,
    /// Names of the steps whose results this step needs.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Which handler runs the step.
    pub handler: HandlerSpec,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Longest one attempt may run before it fails as a timeout.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Domain events this step publishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publishes_events: Vec<EventDeclaration>,
    /// Batch settings (batchable steps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_config: Option<BatchConfig>,
}

/// The kinds of step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// An ordinary step.
    #[default]
    Standard,
    /// Chooses which of its declared children are created.
    Decision,
    /// Waits only for those of its dependencies that were created.
    DeferredConvergence,
    /// Splits work into batches.
    Batchable,
    /// The template cloned once per batch.
    BatchWorker,
}

impl StepType {
    /// The name templates and step rows use (`standard`, `decision`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Standard => "standard",
            StepType::Decision => "decision",
            StepType::DeferredConvergence => "deferred_convergence",
            StepType::Batchable => "batchable",
            StepType::BatchWorker => "batch_worker",
        }
    }
}

impl std::str::FromStr for StepType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(Value::String(s.to_string())).map_err(|_| format!("unknown step type `{s}`"))
    }
}

/// Which handler runs a step, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    /// The name the worker's handler registry knows the handler by.
    pub callable: String,
    /// Entry point on the handler.
    #[serde(default = "default_method")]
    pub method: String,
    /// Configuration passed to the handler as-is.
    #[serde(default = "empty_object")]
    pub initialization: Value,
}

/// When and how often a failed step is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Whether attempts after the first are allowed at all.
    #[serde(default = "default_true")]
    pub retryable: bool,
    /// Total attempts, counting the first.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Shape of the delay between attempts.
    #[serde(default)]
    pub backoff: BackoffKind,
    /// First delay, in milliseconds.
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    /// Longest delay, in milliseconds.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
    /// Growth factor per attempt (exponential backoff).
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    /// Random spread, as a fraction of the delay (0.1 = ±10 %).
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retryable: true,
            max_attempts: default_max_attempts(),
            backoff: BackoffKind::default(),
            base_ms: default_base_ms(),
            max_ms: default_max_ms(),
            multiplier: default_multiplier(),
            jitter: default_jitter(),
        }
    }
}

/// Shape of the retry delay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// base · multiplier^(attempt−1), capped at max.
    #[default]
    Exponential,
    /// base · attempt, capped at max.
    Linear,
    /// No delay.
    None,
}

/// A domain event a step publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDeclaration {
    /// Dotted event name, e.g. `order.shipped`.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the event fires.
    #[serde(default)]
    pub condition: EventCondition,
    /// How the event is delivered.
    #[serde(default)]
    pub delivery_mode: DeliveryMode,
    /// JSON Schema of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// When a declared event fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCondition {
    /// After a successful attempt.
    #[default]
    Success,
    /// After a failed attempt.
    Failure,
    /// After every attempt.
    Always,
}

/// How a domain event is delivered (ADR 0010).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Written to the events table in the same transaction as the step result;
    /// consumed at least once.
    #[default]
    Durable,
    /// In-process subscribers only, best effort.
    Fast,
    /// Both.
    Broadcast,
}

impl From<DeliveryMode> for crate::contract::DomainEventMode {
    fn from(m: DeliveryMode) -> Self {
        match m {
            DeliveryMode::Durable => Self::Durable,
            DeliveryMode::Fast => Self::Fast,
            DeliveryMode::Broadcast => Self::Broadcast,
        }
    }
}

/// Batch settings of a batchable step: how its work is cut into batches and how
/// many batch workers one result may create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Items per batch when the handler gives only `total_items`.
    #[serde(default = "default_batch_size")]
    pub batch_size: u64,
    /// Most batch workers one result may create; more fails the step
    /// (`too_many_batches`).
    #[serde(default = "default_max_batches")]
    pub max_batches: u32,
    /// The batch_worker step cloned per batch; may be left out when exactly one
    /// batch_worker step depends on this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_template: Option<String>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            max_batches: default_max_batches(),
            worker_template: None,
        }
    }
}

fn default_timeout_seconds() -> u64 {
    30
}
fn default_method() -> String {
    "call".to_string()
}
fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn default_true() -> bool {
    true
}
fn default_max_attempts() -> u32 {
    3
}
fn default_base_ms() -> u64 {
    1000
}
fn default_max_ms() -> u64 {
    30_000
}
fn default_multiplier() -> f64 {
    2.0
}
fn default_jitter() -> f64 {
    0.1
}
fn default_batch_size() -> u64 {
    1000
}
fn default_max_batches() -> u32 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_finds_by_name_and_roots_are_the_steps_without_dependencies() {
        let t: TaskTemplate = serde_yaml_ng::from_str(
            "namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n\
             \x20 - { name: a, handler: { callable: x } }\n\
             \x20 - { name: b, dependencies: [a], handler: { callable: x } }\n\
             \x20 - { name: c, handler: { callable: x } }\n",
        )
        .unwrap();
        assert_eq!(t.step("b").unwrap().dependencies, ["a"]);
        assert!(t.step("z").is_none());
        let roots: Vec<&str> = t.roots().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(roots, ["a", "c"]);
        assert_eq!(t.key(), "ns/t@1.0.0");
        assert_eq!(t.steps[0].timeout_seconds, 30);
        assert_eq!(t.steps[0].handler.method, "call");
    }

    #[test]
    fn a_step_runs_in_its_own_namespace_or_else_the_templates() {
        let t: TaskTemplate = serde_yaml_ng::from_str(
            "namespace: shop\nname: t\nversion: 1.0.0\nsteps:\n\
             \x20 - { name: a, handler: { callable: x } }\n\
             \x20 - { name: b, namespace: shop.python, dependencies: [a], handler: { callable: x } }\n\
             \x20 - { name: c, namespace: shop.python, handler: { callable: x } }\n",
        )
        .unwrap();
        assert_eq!(t.step_namespace(t.step("a").unwrap()), "shop");
        assert_eq!(t.step_namespace(t.step("b").unwrap()), "shop.python");
        assert_eq!(t.step_namespaces(), ["shop", "shop.python"]);
        // A step without its own namespace serializes as before (same content hash).
        let a = serde_json::to_value(t.step("a").unwrap()).unwrap();
        assert!(a.get("namespace").is_none());
    }
}
