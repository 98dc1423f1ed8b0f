//! The Rust handlers behind the example templates in `examples/*.yaml`, compiled
//! in so `tasker run` and the benchmarks can use them. Every value is an integer
//! result `{"value": N}`; arithmetic overflow is a permanent failure. The Rust step
//! of the polyglot demo (`demo/`) lives in [`fulfilment`].

pub mod fulfilment;

use crate::worker::{HandlerRegistry, StepContext, StepResult};
use serde_json::json;

/// A registry holding every example handler.
pub fn registry() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    register(&mut r);
    r
}

/// Adds the example handlers to `r`: `square`, `multiply_square`, `sum`,
/// `flaky_square` and `noop`, plus handlers that show each failure mode:
/// `fail_permanently`, `fail_retryable` (with `initialization.retry_after_ms`),
/// `panic` and `sleep` (sleeps `initialization.ms`, for timeouts); and the demo's
/// `ship_order`.
pub fn register(r: &mut HandlerRegistry) {
    r.register_fn("ship_order", fulfilment::ship_order);
    r.register_fn("square", |ctx| async move { square(&ctx) });
    r.register_fn("multiply_square", |ctx| async move {
        let product = dependency_values(&ctx).and_then(|vs| {
            vs.into_iter()
                .try_fold(1i64, |acc, v| acc.checked_mul(v).ok_or_else(overflow))
        });
        value(product.and_then(|p| p.checked_mul(p).ok_or_else(overflow)))
    });
    r.register_fn("sum", |ctx| async move {
        value(dependency_values(&ctx).and_then(|vs| {
            vs.into_iter()
                .try_fold(0i64, |acc, v| acc.checked_add(v).ok_or_else(overflow))
        }))
    });
    r.register_fn("flaky_square", |ctx| async move {
        if ctx.attempt < 3 {
            return StepResult::failure(format!("simulated failure on attempt {}", ctx.attempt), "flaky");
        }
        square(&ctx)
    });
    r.register_fn("noop", |_ctx| async move { StepResult::success(json!({})) });
    r.register_fn("fail_permanently", |ctx| async move {
        StepResult::permanent_failure(format!("{} always fails", ctx.step_name), "example_permanent")
    });
    r.register_fn("fail_retryable", |ctx| async move {
        let r = StepResult::failure(
            format!("{} failed on attempt {}", ctx.step_name, ctx.attempt),
            "example_retryable",
        );
        match ctx.initialization.get("retry_after_ms").and_then(|v| v.as_u64()) {
            Some(ms) => r.retry_after_ms(ms),
            None => r,
        }
    });
    r.register_fn("panic", |ctx| async move {
        if ctx.attempt > 0 {
            panic!("{} panicked on purpose", ctx.step_name);
        }
        StepResult::success(json!({}))
    });
    r.register_fn("sleep", |ctx| async move {
        let ms = ctx.initialization.get("ms").and_then(|v| v.as_u64()).unwrap_or(1000);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        StepResult::success(json!({ "slept_ms": ms }))
    });
}

/// Why an example handler cannot compute its value (kept small; turned into a
/// permanent failure at the end).
enum Problem {
    Overflow,
    Invalid(String),
}

impl From<Problem> for StepResult {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Overflow => StepResult::permanent_failure("integer overflow", "overflow"),
            Problem::Invalid(message) => StepResult::permanent_failure(message, "invalid_input"),
        }
    }
}

fn overflow() -> Problem {
    Problem::Overflow
}

fn value(result: Result<i64, Problem>) -> StepResult {
    match result {
        Ok(v) => StepResult::success(json!({ "value": v })),
        Err(p) => p.into(),
    }
}

/// The single input of a step: its one dependency's value, or the context's `n`.
fn input(ctx: &StepContext) -> Result<i64, Problem> {
    match ctx.dependency_results.len() {
        0 => ctx
            .input("n")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| Problem::Invalid("context needs an integer `n`".into())),
        1 => {
            let (name, result) = ctx.dependency_results.iter().next().expect("one dependency");
            result["value"]
                .as_i64()
                .ok_or_else(|| Problem::Invalid(format!("dependency `{name}` has no integer `value`")))
        }
        n => Err(Problem::Invalid(format!("expected at most one dependency, got {n}"))),
    }
}

fn dependency_values(ctx: &StepContext) -> Result<Vec<i64>, Problem> {
    ctx.dependency_results
        .iter()
        .map(|(name, r)| {
            r["value"]
                .as_i64()
                .ok_or_else(|| Problem::Invalid(format!("dependency `{name}` has no integer `value`")))
        })
        .collect()
}

fn square(ctx: &StepContext) -> StepResult {
    value(input(ctx).and_then(|n| n.checked_mul(n).ok_or_else(overflow)))
}
