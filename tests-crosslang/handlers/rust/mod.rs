//! The Rust conformance handlers, run by `crosslang-rust-worker`. Each callable does
//! exactly what its Python, Ruby and TypeScript twins do (the table in
//! `tests-crosslang/README.md`). The example handlers (`square`, `multiply_square`,
//! `sum`, `flaky_square`) are the core's own, the ones `tasker run` uses.
//!
//! Where the other languages raise an exception, Rust returns the failure the
//! failure table gives that exception (`error_type` = the class name).
//!
//! The decision and batchable handlers are types implementing the core's
//! `Decision` and `Batchable` traits, as the other languages' are classes using
//! their binding's mixins.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tasker_core::contract::DomainEventMode;
use tasker_core::worker::handler::{Batchable, Decision};
use tasker_core::worker::{HandlerRegistry, StepContext, StepHandler, StepResult};

/// The language name these handlers tag their results with.
pub const LANGUAGE: &str = "rust";

/// The 16 characters `make_blob` repeats.
const BLOB_UNIT: &str = "0123456789abcdef";

/// Every conformance handler, with the callables in `broken` replaced by their
/// deliberately wrong variants (for the runner's self-test).
pub fn registry(broken: &[String]) -> Result<HandlerRegistry, String> {
    let mut r = HandlerRegistry::new();
    tasker_core::examples::register(&mut r);
    r.register_fn("decline_card", |_ctx| async move {
        StepResult::permanent_failure("card ending 4242 was declined", "PermanentError")
    });
    r.register_fn("upstream_unavailable", |ctx| async move {
        StepResult::failure(
            format!("inventory service unavailable on attempt {}", ctx.attempt),
            "upstream_unavailable",
        )
    });
    r.register_fn("retry_after_once", |ctx| async move {
        let ms = ctx.initialization["retry_after_ms"].as_u64().unwrap_or(0);
        if ctx.attempt == 1 {
            StepResult::failure(format!("rate limited: retry after {ms} ms"), "RetryableError").retry_after_ms(ms)
        } else {
            StepResult::success(json!({ "attempt": ctx.attempt }))
        }
    });
    r.register_fn("always_slow", |ctx| async move {
        let ms = ctx.initialization["sleep_ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        StepResult::success(json!({ "attempt": ctx.attempt }))
    });
    // Rust cannot put NaN into a JSON value; its way to break the contract is a
    // failure without an error.
    r.register_fn("return_nan", |_ctx| async move {
        StepResult {
            success: false,
            result: Value::Null,
            error: None,
            metadata: Map::new(),
            published: vec![],
        }
    });
    r.register_fn("raise_unexpected", |_ctx| async move {
        StepResult::failure("warehouse 7 unreachable: 倉庫 ✗", "InventoryServiceDown")
    });
    r.register_fn("echo_text", |ctx| async move {
        let text = ctx
            .input("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        StepResult::success(json!({
            "text": text,
            "code_points": text.chars().count(),
            "utf8_bytes": text.len(),
            "labels": ctx.input("labels").cloned().unwrap_or(Value::Null),
        }))
    });
    r.register_fn("make_blob", |ctx| async move {
        let kib = ctx.initialization["kib"].as_u64().unwrap_or(0) as usize;
        let blob = BLOB_UNIT.repeat(kib * 64);
        StepResult::success(json!({ "bytes": blob.len(), "blob": blob }))
    });
    r.register_fn("digest_blobs", |ctx| async move {
        let parent = ctx.dependency_results.values().next().map(|p| &p["blob"]);
        StepResult::success(json!({
            "parent": digest(parent),
            "context": digest(ctx.input("blob")),
        }))
    });
    r.register_fn("constant", |ctx| async move {
        StepResult::success(ctx.initialization.get("value").cloned().unwrap_or(Value::Null))
    });
    r.register_fn("collect", |ctx| async move {
        StepResult::success(json!({ "received": ctx.dependency_results }))
    });
    r.register_fn("publish_events", |ctx| async move { publish_events(&ctx, None) });
    r.register_fn("relay", |ctx| async move { relay(&ctx) });
    r.register("route_branches", RouteBranches);
    r.register("split_items", SplitItems);
    r.register_fn("sum_range", |ctx| async move {
        sum_range(&ctx, Resume::FromCheckpoint).await
    });
    for callable in broken {
        match callable.as_str() {
            // Off by one: what a subtly wrong port of `square` would return.
            "square" => {
                r.register_fn("square", |ctx| async move {
                    let n = input_value(&ctx);
                    StepResult::success(json!({ "value": n * n + 1 }))
                });
            }
            // Starts its range over on a retry, ignoring the checkpoint.
            "sum_range" => {
                r.register_fn("sum_range", |ctx| async move { sum_range(&ctx, Resume::Never).await });
            }
            // Publishes every event as `fast`, whatever its mode.
            "publish_events" => {
                r.register_fn("publish_events", |ctx| async move {
                    publish_events(&ctx, Some(DomainEventMode::Fast))
                });
            }
            other => {
                return Err(format!(
                    "no broken variant of `{other}` (known: square, sum_range, publish_events)"
                ))
            }
        }
    }
    Ok(r)
}

/// `publish_events`: publishes each `{name, mode, payload}` of
/// `initialization.events` with its result (`mode` replaced by `force_mode` in the
/// broken variant), and returns `{"published": <how many>}`.
fn publish_events(ctx: &StepContext, force_mode: Option<DomainEventMode>) -> StepResult {
    let events = ctx
        .initialization
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut result = StepResult::success(json!({ "published": events.len() }));
    for e in &events {
        let mode = match force_mode {
            Some(m) => m,
            None => match serde_json::from_value::<DomainEventMode>(e["mode"].clone()) {
                Ok(m) => m,
                Err(err) => return StepResult::permanent_failure(format!("bad mode: {err}"), "ValueError"),
            },
        };
        let name = e["name"].as_str().unwrap_or_default().to_string();
        result = result.publish(ctx, name, e["payload"].clone(), mode);
    }
    result
}

/// The single parent's `value`, else the context's `n` (0 when neither is an integer).
fn input_value(ctx: &StepContext) -> i64 {
    match ctx.dependency_results.values().next() {
        Some(parent) => parent["value"].as_i64().unwrap_or(0),
        None => ctx.input("n").and_then(Value::as_i64).unwrap_or(0),
    }
}

/// `{bytes, sha256}` of a string (null for anything else).
fn digest(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_str) {
        Some(s) => {
            let hash: String = Sha256::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            json!({ "bytes": s.len(), "sha256": hash })
        }
        None => Value::Null,
    }
}

/// Doubles the parent's (or the context's) value and appends this step to the
/// parent's `visited` list; tags the result with the language.
fn relay(ctx: &StepContext) -> StepResult {
    let parent = ctx.dependency_results.values().next();
    let mut visited: Vec<Value> = parent
        .and_then(|p| p["visited"].as_array().cloned())
        .unwrap_or_default();
    visited.push(json!(ctx.step_name));
    let mut result = StepResult::success(json!({ "value": input_value(ctx) * 2, "visited": visited }));
    result.metadata.insert("language".into(), json!(LANGUAGE));
    result
}

/// `route_branches`: creates the branches the context's `branches` names, or none.
struct RouteBranches;

#[async_trait]
impl StepHandler for RouteBranches {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        let names: Vec<&str> = ctx
            .input("branches")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if names.is_empty() {
            self.no_branches()
        } else {
            self.create_steps(&names)
        }
    }
}

impl Decision for RouteBranches {}

/// `split_items`: batches over the context's `items`, of its `batch_size` when
/// given (else the engine cuts them); none when there are no items.
struct SplitItems;

#[async_trait]
impl StepHandler for SplitItems {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        let items = ctx.input("items").and_then(Value::as_u64).unwrap_or(0);
        if items == 0 {
            self.no_batches()
        } else {
            self.create_batches(items, ctx.input("batch_size").and_then(Value::as_u64))
        }
    }
}

impl Batchable for SplitItems {}

/// Whether `sum_range` resumes from the last checkpoint (its deliberately broken
/// variant does not).
#[derive(Clone, Copy, PartialEq)]
enum Resume {
    FromCheckpoint,
    Never,
}

/// `sum_range`: adds up the item numbers of its cursor range, from the last
/// checkpoint's cursor and sum on; saves `{cursor: next item, data: {sum}}` after
/// every `checkpoint_every` items; on attempt 1, fails just before item
/// `fail_once_at` of the context (`SimulatedCrash`).
async fn sum_range(ctx: &StepContext, resume: Resume) -> StepResult {
    let Some((mut start, end)) = ctx.cursor_range() else {
        return StepResult::permanent_failure("this step has no cursor range", "invalid_input");
    };
    let mut checkpoint = ctx.checkpoint.as_ref();
    if resume == Resume::Never && checkpoint.take().is_some() {
        start = ctx.initialization["cursor"]["start_cursor"].as_u64().unwrap_or(start);
    }
    let every = ctx.initialization["checkpoint_every"].as_u64().unwrap_or(0);
    let fail_at = ctx.input("fail_once_at").and_then(Value::as_u64);
    let mut sum = checkpoint.and_then(|c| c["data"]["sum"].as_u64()).unwrap_or(0);
    let mut processed = Vec::new();
    for i in start..end {
        if ctx.attempt == 1 && fail_at == Some(i) {
            return StepResult::failure(format!("simulated crash before item {i}"), "SimulatedCrash");
        }
        sum += i;
        processed.push(i);
        if every > 0 && (i + 1) % every == 0 && i + 1 < end {
            if let Err(e) = ctx.save_checkpoint(json!(i + 1), json!({ "sum": sum })).await {
                return StepResult::failure(e.to_string(), "CheckpointError");
            }
        }
    }
    StepResult::success(json!({
        "batch_id": ctx.initialization["cursor"]["batch_id"],
        "resumed_from": checkpoint.map(|c| c["cursor"].clone()).unwrap_or(Value::Null),
        "processed": processed,
        "sum": sum,
    }))
}
