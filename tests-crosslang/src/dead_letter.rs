//! The dead-letter round trip of a case (issue 8, ADR 0009): once the group's tasks
//! stopped, a staleness sweep with only the `error` rule on must record the case's
//! task in the dead-letter queue; the runner lists the open entry, resolves it as
//! the scenario says (`complete_step`, `resolve_step`, `retry_step`) while the
//! workers still run, and waits for the task again. The entry is read back and
//! normalised for comparison (ids and times left out, steps by name).

use crate::scenario::{Case, DeadLetterSpec, Scenario};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tasker_core::store::{
    DlqAction, DlqEntry, DlqListParams, DlqResolveOutcome, DlqResolveParams, DlqStatus, DlqSweepParams, SharedStore,
    StaleThresholds,
};
use uuid::Uuid;

/// Who resolves the entries (recorded as `resolved_by`).
pub const ACTOR: &str = "conformance";

/// The note every resolution carries.
pub const NOTE: &str = "resolved by the conformance runner";

/// Thresholds with every rule off but `error` (a task in `error` for 1 ms or more).
fn error_rule_only() -> StaleThresholds {
    StaleThresholds {
        step_lease_grace_ms: None,
        step_enqueued_ms: None,
        waiting_for_dependencies_ms: None,
        waiting_for_retry_ms: None,
        steps_in_process_ms: None,
        blocked_ms: None,
        error_ms: Some(1),
        max_lifetime_ms: None,
    }
}

/// The cases of a group that have a round trip, with their tasks.
pub fn cases_with_round_trip<'a>(cases: &'a [(Arc<Scenario>, usize)], tasks: &[Uuid]) -> Vec<(&'a Case, Uuid)> {
    cases
        .iter()
        .zip(tasks)
        .filter_map(|((s, i), t)| {
            let c = &s.cases[*i];
            c.dead_letter.as_ref().map(|_| (c, *t))
        })
        .collect()
}

/// Sweeps once, then lists and resolves each case's entry. Answers, per task, the
/// entry as listed before its resolution (normalised), or why the round trip
/// could not be made.
pub async fn sweep_and_resolve(store: &SharedStore, cases: &[(&Case, Uuid)]) -> HashMap<Uuid, Result<Value, String>> {
    let mut out = HashMap::new();
    let now = tasker_core::clock::system().now_ms() + 1_000;
    let sweep = store
        .dlq_sweep(DlqSweepParams {
            thresholds: error_rule_only(),
            limit: 1_000,
            now,
            processor: ACTOR.into(),
        })
        .await;
    if let Err(e) = sweep {
        for (_, t) in cases {
            out.insert(*t, Err(format!("the staleness sweep failed: {e}")));
        }
        return out;
    }
    let open = match store
        .dlq_list(DlqListParams {
            status: Some(DlqStatus::Open),
            limit: 10_000,
            ..DlqListParams::default()
        })
        .await
    {
        Ok(entries) => entries,
        Err(e) => {
            for (_, t) in cases {
                out.insert(*t, Err(format!("listing the open dead-letter entries failed: {e}")));
            }
            return out;
        }
    };
    for (case, task) in cases {
        let spec = case.dead_letter.as_ref().expect("filtered on dead_letter");
        let result = match open.iter().find(|e| e.task_uuid == *task) {
            None => Err("the sweep recorded no open dead-letter entry for the task".to_string()),
            Some(entry) => match resolve(store, entry, spec, now).await {
                Ok(()) => normalise(store, entry).await,
                Err(e) => Err(e),
            },
        };
        out.insert(*task, result);
    }
    out
}

async fn resolve(store: &SharedStore, entry: &DlqEntry, spec: &DeadLetterSpec, now: i64) -> Result<(), String> {
    let r = &spec.resolve;
    let step_uuid = step_by_name(store, entry.task_uuid, &r.step).await?;
    let action = match r.action.as_str() {
        "complete_step" => DlqAction::CompleteStep {
            step_uuid,
            result: r.result.clone(),
        },
        "resolve_step" => DlqAction::ResolveStep { step_uuid },
        _ => DlqAction::RetryStep { step_uuid },
    };
    let outcome = store
        .dlq_resolve(DlqResolveParams {
            entry_id: entry.entry_id,
            action,
            note: Some(NOTE.into()),
            actor: ACTOR.into(),
            now,
            processor: ACTOR.into(),
            events: vec![],
        })
        .await
        .map_err(|e| format!("resolving the dead-letter entry failed: {e}"))?;
    match outcome {
        DlqResolveOutcome::Resolved { .. } => Ok(()),
        other => Err(format!("the dead-letter entry was not resolved: {other:?}")),
    }
}

async fn step_by_name(store: &SharedStore, task: Uuid, name: &str) -> Result<Uuid, String> {
    let view = store
        .task_get(task)
        .await
        .map_err(|e| format!("reading task {task}: {e}"))?
        .ok_or_else(|| format!("task {task} not found"))?;
    view.steps
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.step_uuid)
        .ok_or_else(|| format!("task {task} has no step `{name}`"))
}

/// The entry as listed (open) and as it is after the resolution, normalised:
/// `{reason, task_state, stale_state, step, threshold_ms, snapshot_task_state,
/// listed_status, status, resolution, resolution_step, resolution_note, resolved_by}`.
async fn normalise(store: &SharedStore, listed: &DlqEntry) -> Result<Value, String> {
    let now = store
        .dlq_get(listed.entry_id)
        .await
        .map_err(|e| format!("reading the dead-letter entry failed: {e}"))?
        .ok_or("the dead-letter entry disappeared")?;
    let view = store
        .task_get(listed.task_uuid)
        .await
        .map_err(|e| format!("reading task {}: {e}", listed.task_uuid))?
        .ok_or("the task disappeared")?;
    let name_of = |step: Option<Uuid>| -> Value {
        step.and_then(|u| view.steps.iter().find(|s| s.step_uuid == u))
            .map(|s| Value::String(s.name.clone()))
            .unwrap_or(Value::Null)
    };
    Ok(json!({
        "reason": listed.reason.as_str(),
        "task_state": listed.task_state.to_string(),
        "stale_state": listed.stale_state,
        "step": name_of(listed.step_uuid),
        "threshold_ms": listed.threshold_ms,
        "snapshot_task_state": listed.snapshot.pointer("/task/state").cloned().unwrap_or(Value::Null),
        "listed_status": listed.status.as_str(),
        "status": now.status.as_str(),
        "resolution": now.resolution.map(|r| r.as_str()),
        "resolution_step": name_of(now.resolution_step_uuid),
        "resolution_note": now.resolution_note,
        "resolved_by": now.resolved_by,
    }))
}
