//! The Rust handler API: the [`StepHandler`] trait, what a handler sees
//! ([`StepContext`], with a batch worker's cursor range and checkpoints) and
//! returns ([`StepResult`]), capability traits ([`Api`], [`Decision`],
//! [`Batchable`]) and the registry that maps callables to handlers.

use super::checkpoint::{CheckpointError, Checkpointer};
use crate::contract::CursorConfig;
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
    /// The template step it was made from (a batch worker `process_002` was made
    /// from `process`; otherwise the step's own name).
    pub template_step_name: String,
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
    /// Saves checkpoints for the claim this attempt runs under (None outside a worker).
    #[serde(skip)]
    pub(crate) checkpointer: Option<Checkpointer>,
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

    /// A batch worker's cursor range `(start, end)`: 0-based, end-exclusive. Found
    /// in `initialization["cursor"]` (`start_cursor`, `end_cursor`: where the engine
    /// puts it) or `initialization` itself, else in the batchable parent's
    /// `batch_processing_outcome` (the
    /// `cursor_configs` entry whose `batch_id` ends this step's name). When an
    /// earlier attempt saved a checkpoint with an integer cursor, `start` is that
    /// cursor: the attempt resumes where the last one stopped. None when the step
    /// has no range.
    pub fn cursor_range(&self) -> Option<(u64, u64)> {
        let spec = self.cursor_spec()?;
        let (start, end) = (spec.get("start_cursor")?.as_u64()?, spec.get("end_cursor")?.as_u64()?);
        let resume = self
            .checkpoint
            .as_ref()
            .and_then(|c| c.get("cursor"))
            .and_then(Value::as_u64);
        Some(match resume {
            Some(cursor) => (cursor.max(start).min(end), end),
            None => (start, end),
        })
    }

    fn cursor_spec(&self) -> Option<&Value> {
        let has_range = |c: &&Value| c.get("start_cursor").is_some() && c.get("end_cursor").is_some();
        let mut own = self
            .initialization
            .get("cursor")
            .into_iter()
            .chain([&self.initialization]);
        if let Some(c) = own.find(has_range) {
            return Some(c);
        }
        let batch_id = self.step_name.strip_prefix(&format!("{}_", self.template_step_name))?;
        self.dependency_results.values().find_map(|r| {
            let outcome = r.get("batch_processing_outcome")?;
            if outcome.get("type")? != "create_batches" {
                return None;
            }
            outcome
                .get("cursor_configs")?
                .as_array()?
                .iter()
                .find(|c| c.get("batch_id").and_then(Value::as_str) == Some(batch_id))
        })
    }

    /// Saves a batch worker's progress: `cursor` (where to resume) and `data`
    /// (anything, e.g. partial totals). It also extends the lease. When this
    /// attempt is lost or fails, the next one sees it as `checkpoint` and its
    /// `cursor_range` starts at `cursor`. (`self.checkpoint` keeps what this
    /// attempt started with.)
    pub async fn save_checkpoint(&self, cursor: Value, data: Value) -> Result<(), CheckpointError> {
        match &self.checkpointer {
            Some(c) => c.save(cursor, data).await,
            None => Err(CheckpointError::NotAttached),
        }
    }

    /// A context for calling a handler outside a worker (tests, tools): the given
    /// step, task context and parents' results, attempt 1 of 1, no checkpoint.
    /// `save_checkpoint` fails on it with `NotAttached`.
    pub fn detached(step_name: &str, context: Value, dependency_results: BTreeMap<String, Value>) -> Self {
        Self {
            task_uuid: Uuid::nil(),
            step_uuid: Uuid::nil(),
            step_name: step_name.to_string(),
            template_step_name: step_name.to_string(),
            namespace: String::new(),
            task_name: String::new(),
            context,
            dependency_results,
            initialization: Value::Object(Map::new()),
            attempt: 1,
            max_attempts: 1,
            checkpoint: None,
            correlation_id: Uuid::nil(),
            checkpointer: None,
        }
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
    /// Domain events the handler publishes with this result ([`StepResult::publish`];
    /// a bridge adds its host handler's publishes here). Durable ones are written
    /// in the result's transaction; fast ones go out once it is written.
    #[serde(skip)]
    pub published: Vec<crate::events::domain::DomainEvent>,
}

impl StepResult {
    /// A success carrying `result`.
    pub fn success(result: Value) -> Self {
        Self {
            success: true,
            result,
            error: None,
            metadata: Map::new(),
            published: Vec::new(),
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
            published: Vec::new(),
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

    /// Publishes a domain event about this step with the result: a `durable` (or
    /// `broadcast`) event is written in the same transaction as the result, only if
    /// the result is recorded; a `fast` one goes to in-process subscribers after
    /// it is. A payload that fails the schema the step declares for `name` is
    /// rejected (logged and counted in `tasker_domain_events_rejected_total`); the
    /// result is recorded anyway.
    pub fn publish(
        mut self,
        ctx: &StepContext,
        name: impl Into<String>,
        payload: Value,
        mode: crate::contract::DomainEventMode,
    ) -> Self {
        self.published.push(crate::events::domain::DomainEvent {
            event_id: Uuid::now_v7(),
            name: name.into(),
            payload,
            mode,
            task_uuid: Some(ctx.task_uuid),
            step_uuid: Some(ctx.step_uuid),
            step_name: Some(ctx.step_name.clone()),
            namespace: Some(ctx.namespace.clone()),
            correlation_id: Some(ctx.correlation_id),
            fired_at: crate::clock::system().now_ms(),
        });
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

/// Decision steps choose which of their branches (the steps that depend on them)
/// are created; the engine creates them, and the convergence steps waiting for
/// them, when the result is written.
pub trait Decision: StepHandler {
    /// Create these branches.
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

/// Batchable steps split work into cursor ranges; the engine creates one batch
/// worker per range, and the convergence step after them, when the result is
/// written.
pub trait Batchable: StepHandler {
    /// Split `total_items` into batches of `batch_size` (0-based, end-exclusive
    /// ranges, ids `"001"`, `"002"`, ...); with `None`, the engine cuts them by the
    /// template's `batch_config.batch_size`.
    fn create_batches(&self, total_items: u64, batch_size: Option<u64>) -> StepResult {
        let outcome = match batch_size {
            Some(size) => serde_json::json!({ "type": "create_batches", "total_items": total_items,
                "cursor_configs": CursorConfig::cut(total_items, size) }),
            None => serde_json::json!({ "type": "create_batches", "total_items": total_items }),
        };
        StepResult::success(serde_json::json!({ "batch_processing_outcome": outcome }))
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
        let r = Fetch.create_batches(1000, Some(300)).result;
        let ranges = r["batch_processing_outcome"]["cursor_configs"]
            .as_array()
            .unwrap()
            .clone();
        let bounds: Vec<(u64, u64)> = ranges
            .iter()
            .map(|c| (c["start_cursor"].as_u64().unwrap(), c["end_cursor"].as_u64().unwrap()))
            .collect();
        assert_eq!(bounds, vec![(0, 300), (300, 600), (600, 900), (900, 1000)]);
        assert_eq!(
            Fetch.create_batches(10, None).result,
            json!({"batch_processing_outcome": {"type": "create_batches", "total_items": 10}})
        );
    }

    #[test]
    fn a_cursor_range_comes_from_the_initialization_or_the_analyzer_and_resumes_at_the_checkpoint() {
        let mut ctx = StepContext::detached("work_002", json!({}), BTreeMap::new());
        assert_eq!(ctx.cursor_range(), None);
        ctx.initialization = json!({"cursor": {"batch_id": "002", "start_cursor": 200, "end_cursor": 400}});
        assert_eq!(ctx.cursor_range(), Some((200, 400)));
        ctx.checkpoint = Some(json!({"cursor": 350, "data": {}, "saved_at_ms": 1}));
        assert_eq!(ctx.cursor_range(), Some((350, 400)));
        ctx.checkpoint = Some(json!({"cursor": 9999, "data": null, "saved_at_ms": 1}));
        assert_eq!(ctx.cursor_range(), Some((400, 400)), "never past the end");

        let mut ctx = StepContext::detached("work_002", json!({}), BTreeMap::new());
        ctx.template_step_name = "work".into();
        ctx.dependency_results
            .insert("plan".into(), Fetch.create_batches(1000, Some(300)).result);
        assert_eq!(ctx.cursor_range(), Some((300, 600)));
    }

    #[tokio::test]
    async fn a_detached_context_cannot_save_a_checkpoint() {
        let ctx = StepContext::detached("work_001", json!({}), BTreeMap::new());
        let e = ctx.save_checkpoint(json!(5), json!(null)).await.unwrap_err();
        assert!(matches!(e, CheckpointError::NotAttached), "{e}");
    }
}
