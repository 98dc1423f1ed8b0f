//! The handlers of `examples/conditional_approval.yaml`: a decision step routes a
//! purchase request by its amount; a deferred convergence step finalizes it with
//! the approvals that were created.

use crate::worker::handler::Decision;
use crate::worker::{HandlerRegistry, StepContext, StepHandler, StepResult};
use async_trait::async_trait;
use serde_json::{json, Value};

/// Registers `approval_validate`, `approval_route`, `approval_auto`,
/// `approval_manager`, `approval_finance` and `approval_finalize`.
pub(super) fn register(r: &mut HandlerRegistry) {
    r.register_fn("approval_validate", |ctx| async move { validate(&ctx) });
    r.register("approval_route", RouteApproval);
    r.register_fn("approval_auto", |_ctx| async move { approve("auto") });
    r.register_fn("approval_manager", |_ctx| async move { approve("manager") });
    r.register_fn("approval_finance", |_ctx| async move { approve("finance") });
    r.register_fn("approval_finalize", |ctx| async move { finalize(&ctx) });
}

/// The request's amount, checked.
fn validate(ctx: &StepContext) -> StepResult {
    match ctx.input("amount").and_then(Value::as_i64) {
        Some(amount) if amount >= 0 => StepResult::success(json!({
            "amount": amount,
            "request_id": ctx.input("request_id").cloned().unwrap_or(Value::Null),
        })),
        _ => StepResult::permanent_failure("the request needs an integer `amount` >= 0", "invalid_input"),
    }
}

/// Chooses the approvals an amount needs: none for 0, `auto_approve` below
/// `auto_limit`, `manager_approval` below `finance_threshold`, and
/// `manager_approval` with `finance_approval` from there on.
struct RouteApproval;

#[async_trait]
impl StepHandler for RouteApproval {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        let Some(amount) = ctx
            .dependency("validate_request")
            .and_then(|r| r.get("amount"))
            .and_then(Value::as_i64)
        else {
            return StepResult::permanent_failure("validate_request gave no amount", "invalid_input");
        };
        let limit = |key: &str, default: i64| ctx.initialization.get(key).and_then(Value::as_i64).unwrap_or(default);
        let (auto_limit, finance_threshold) = (limit("auto_limit", 1000), limit("finance_threshold", 5000));
        let mut decided = if amount == 0 {
            self.no_branches()
        } else if amount < auto_limit {
            self.create_steps(&["auto_approve"])
        } else if amount < finance_threshold {
            self.create_steps(&["manager_approval"])
        } else {
            self.create_steps(&["manager_approval", "finance_approval"])
        };
        decided.result["amount"] = json!(amount);
        decided
    }
}

impl Decision for RouteApproval {}

fn approve(approver: &str) -> StepResult {
    StepResult::success(json!({ "approver": approver, "approved": true }))
}

/// Gathers the approvals that ran (any of the three branches) and the amount.
fn finalize(ctx: &StepContext) -> StepResult {
    let mut approvals: Vec<&str> = Vec::new();
    let mut approved = true;
    for result in ctx.dependency_results.values() {
        if let Some(approver) = result.get("approver").and_then(Value::as_str) {
            approvals.push(approver);
            approved &= result.get("approved") == Some(&Value::Bool(true));
        }
    }
    approvals.sort_unstable();
    let amount = ctx
        .dependency("route_approval")
        .and_then(|r| r.get("amount"))
        .cloned()
        .unwrap_or(Value::Null);
    StepResult::success(json!({ "approved": approved, "approvals": approvals, "amount": amount }))
}
