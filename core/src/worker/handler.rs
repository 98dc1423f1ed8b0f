//! The Rust handler API: the [`StepHandler`] trait, what a handler sees
//! ([`StepContext`]) and returns ([`StepResult`]), capability traits ([`Api`],
//! [`Decision`], [`Batchable`]) and the registry that maps callables to handlers.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// Everything a handler may read about the step it runs.
#[derive(Debug, Clone, Serialize)]
pub struct StepContext {
    /// The task.
    pub task_uuid: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// Namespace of the task's template (a step routed to another namespace
    /// still sees its template's here).
    pub namespace: String,
    /// Task template name.
    pub task_name: String,
    /// The task's context (its input).
    pub context: Value,
    /// Results of the parent steps, by step name.
    pub dependency_results: BTreeMap<String, Value>,
    /// The step's `handler.initialization` from the template.
    pub initialization: Value,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Last checkpoint of a batch worker, if any.
    pub checkpoint: Option<Value>,
    /// Correlation id: put it in your logs.
    pub correlation_id: Uuid,
}

impl StepContext {
    /// A field of the task context.
    pub fn input(&self, key: &str) -> Option<&Value> {
        self.context.get(key)
    }

    /// The result of a parent step.
    pub fn dependency(&self, step: &str) -> Option<&Value> {
        self.dependency_results.get(step)
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// What went wrong, for people.
    pub message: String,
    /// A short classifier (an exception class name, `timeout`, `panic`, ...).
    pub error_type: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Wait at least this long before the next attempt (a server's Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// An application error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Where it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

/// What a handler returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// True when the attempt succeeded.
    pub success: bool,
    /// The result (children see it as a dependency result).
    pub result: Value,
    /// Why it failed (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Free-form metadata recorded with the result.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl StepResult {
    /// A success carrying `result`.
    pub fn success(result: Value) -> Self {
        Self {
            success: true,
            result,
            error: None,
            metadata: Map::new(),
        }
    }

    /// A failure; retryable unless you say otherwise (the failure table's default).
    pub fn failure(message: impl Into<String>, error_type: impl Into<String>) -> Self {
        Self {
            success: false,
            result: Value::Null,
            error: Some(StepError {
                message: message.into(),
                error_type: error_type.into(),
                retryable: true,
                retry_after_ms: None,
                code: None,
                backtrace: None,
            }),
            metadata: Map::new(),
        }
    }

    /// A failure that must not be retried.
    pub fn permanent_failure(message: impl Into<String>, error_type: impl Into<String>) -> Self {
        Self::failure(message, error_type).retryable(false)
    }

    /// Sets whether a failure may be retried.
    pub fn retryable(mut self, retryable: bool) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.retryable = retryable;
        }
        self
    }

    /// Asks for at least `ms` before the next attempt.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.retry_after_ms = Some(ms);
        }
        self
    }

    /// Sets an application error code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.code = Some(code.into());
        }
        self
    }
}

/// A step handler. Implementations must be cheap to share: one instance serves
/// every step that names its callable, concurrently.
#[async_trait]
pub trait StepHandler: Send + Sync + 'static {
    /// Runs one attempt.
    async fn call(&self, ctx: &StepContext) -> StepResult;

    /// Runs the entry point the template's `handler.method` names. Handlers with
    /// several entry points override this; the default knows only `call`.
    async fn call_method(&self, method: &str, ctx: &StepContext) -> StepResult {
        if method == "call" {
            self.call(ctx).await
        } else {
            StepResult::permanent_failure(format!("handler has no method `{method}`"), "unknown_method")
        }
    }
}

/// HTTP-calling handlers: how a response status becomes a result. 4xx (except 408
/// and 429) are permanent; 408, 429 and 5xx are retryable; a Retry-After is honoured.
pub trait Api: StepHandler {
    /// The result for a failed HTTP response.
    fn api_failure(&self, status: u16, message: &str, retry_after_ms: Option<u64>) -> StepResult {
        let retryable = matches!(status, 408 | 429) || status >= 500;
        let mut r =
            StepResult::failure(format!("HTTP {status}: {message}"), format!("http_{status}")).retryable(retryable);
        if let (true, Some(ms)) = (retryable, retry_after_ms) {
            r = r.retry_after_ms(ms);
        }
        r
    }
}

/// Decision steps choose which declared children are created (executed by the
/// dynamic-workflow engine; the result shapes are fixed here).
pub trait Decision: StepHandler {
    /// Create these children.
    fn create_steps(&self, steps: &[&str]) -> StepResult {
        StepResult::success(
            serde_json::json!({ "decision_point_outcome": { "type": "create_steps", "step_names": steps } }),
        )
    }
    /// Create none of them.
    fn no_branches(&self) -> StepResult {
        StepResult::success(serde_json::json!({ "decision_point_outcome": { "type": "no_branches" } }))
    }
}

/// Batchable steps split work into cursor ranges (executed by the dynamic-workflow
/// engine; the result shapes are fixed here).
pub trait Batchable: StepHandler {
    /// Split `total_items` into batches of `batch_size` (0-based, end-exclusive ranges).
    fn create_batches(&self, total_items: u64, batch_size: u64) -> StepResult {
        let size = batch_size.max(1);
        let ranges: Vec<Value> = (0..total_items.div_ceil(size))
            .map(|i| serde_json::json!({ "batch_id": format!("{:03}", i + 1), "start_cursor": i * size, "end_cursor": ((i + 1) * size).min(total_items) }))
            .collect();
        StepResult::success(
            serde_json::json!({ "batch_processing_outcome": { "type": "create_batches", "total_items": total_items, "cursor_configs": ranges } }),
        )
    }
    /// Nothing to process.
    fn no_batches(&self) -> StepResult {
        StepResult::success(serde_json::json!({ "batch_processing_outcome": { "type": "no_batches" } }))
    }
}

/// A handler written as an async closure.
struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> StepHandler for FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StepResult> + Send + 'static,
{
    async fn call(&self, ctx: &StepContext) -> StepResult {
        (self.0)(ctx.clone()).await
    }
}

/// Handlers by callable name.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn StepHandler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.handlers.keys().collect();
        names.sort();
        f.debug_struct("HandlerRegistry").field("handlers", &names).finish()
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `callable`, replacing any previous one.
    pub fn register(&mut self, callable: impl Into<String>, handler: impl StepHandler) -> &mut Self {
        self.handlers.insert(callable.into(), Arc::new(handler));
        self
    }

    /// Registers an async closure under `callable`.
    pub fn register_fn<F, Fut>(&mut self, callable: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult> + Send + 'static,
    {
        self.register(callable, FnHandler(f))
    }

    /// The handler for `callable`.
    pub fn get(&self, callable: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(callable).cloned()
    }

    /// Registered callables, sorted.
    pub fn callables(&self) -> Vec<String> {
        let mut v: Vec<String> = self.handlers.keys().cloned().collect();
        v.sort();
        v
    }
}

impl crate::template::HandlerLookup for HandlerRegistry {
    fn has_handler(&self, callable: &str) -> bool {
        self.handlers.contains_key(callable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fetch;
    #[async_trait]
    impl StepHandler for Fetch {
        async fn call(&self, _: &StepContext) -> StepResult {
            StepResult::success(json!({}))
        }
    }
    impl Api for Fetch {}
    impl Batchable for Fetch {}

    #[test]
    fn failures_are_retryable_unless_said_otherwise() {
        assert!(StepResult::failure("x", "y").error.unwrap().retryable);
        assert!(!StepResult::permanent_failure("x", "y").error.unwrap().retryable);
    }

    #[test]
    fn api_failures_follow_the_status_rules() {
        let e = |s, ra| Fetch.api_failure(s, "m", ra).error.unwrap();
        assert!(!e(404, None).retryable);
        assert!(!e(400, Some(5)).retryable && e(400, Some(5)).retry_after_ms.is_none());
        assert!(e(429, Some(2000)).retryable && e(429, Some(2000)).retry_after_ms == Some(2000));
        assert!(e(503, None).retryable && e(408, None).retryable);
    }

    #[test]
    fn batches_cover_every_item_once() {
        let r = Fetch.create_batches(1000, 300).result;
        let ranges = r["batch_processing_outcome"]["cursor_configs"]
            .as_array()
            .unwrap()
            .clone();
        let bounds: Vec<(u64, u64)> = ranges
            .iter()
            .map(|c| (c["start_cursor"].as_u64().unwrap(), c["end_cursor"].as_u64().unwrap()))
            .collect();
        assert_eq!(bounds, vec![(0, 300), (300, 600), (600, 900), (900, 1000)]);
    }
}
