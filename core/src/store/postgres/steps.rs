//! Step rows on PostgreSQL: claims, results, leases.

use super::{count_row, data, domain_events, PgStore, RunOnStore};
use crate::orchestration::step_expansion::ExistingStep;
use crate::state::{StepState, TaskState};
use crate::store::*;
use crate::store::{batch, expansion};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::HashSet;
use std::str::FromStr;

pub(super) async fn claim_ready_many(
    store: &PgStore,
    p: StepClaimReadyManyParams,
) -> Result<Vec<ClaimedStep>, StoreError> {
    if p.limit == 0 {
        return Ok(vec![]);
    }
    let resume = batch::retry_resume_plan();
    let rows = store
        .query(include_str!("queries/step/claim_ready_many.sql"))
        .bind(&p.namespace)
        .bind(p.now)
        .bind(p.limit as i64)
        .bind(p.now + p.lease_ms)
        .bind(&p.worker_id)
        .bind(json!({ "worker_id": p.worker_id }))
        .bind(batch::retry_claim_path().map(|s| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)))
        .bind(uuid::Uuid::now_v7())
        .bind(
            resume
                .path_json()
                .map(|s| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)),
        )
        .bind(resume.final_event())
        .fetch_all_on(store)
        .await?;
    store.autocommitted();
    claimed_from_rows(&rows)
}

/// `step` rows (JSON objects) as claimed steps.
fn claimed_from_rows(rows: &[PgRow]) -> Result<Vec<ClaimedStep>, StoreError> {
    rows.iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "step"))
        .map(|r| Ok(serde_json::from_value::<ClaimedStep>(data(r)?)?))
        .collect()
}

#[derive(Deserialize)]
struct StepRow {
    step_uuid: uuid::Uuid,
    task_uuid: uuid::Uuid,
    namespace: String,
    state: String,
}

#[derive(Deserialize)]
struct TaskRow {
    task_uuid: uuid::Uuid,
    state: String,
}

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

pub(super) async fn complete_many(store: &PgStore, p: StepCompleteManyParams) -> Result<CompletionReport, StoreError> {
    let mut report = CompletionReport::default();
    if p.completions.is_empty() {
        return Ok(report);
    }
    let (unique, duplicates) = batch::dedupe(&p.completions);
    let step_ids: Vec<uuid::Uuid> = unique.iter().map(|c| c.step_uuid).collect();
    let mut tx = store.begin().await?;
    // Lock the tasks of these steps first (in order), so concurrent batches touching
    // one task serialize and the counts below see every earlier batch.
    store
        .query(include_str!("queries/task/lock_of_steps.sql"))
        .bind(&step_ids)
        .execute(&mut *tx)
        .await?;
    let mut payload = batch::completion_payload(&unique);
    if let Some(claims) = expansion::read_payload(&unique) {
        // Decision and batch outcomes: read, plan the steps they create, write
        // those, then apply the results as usual, in the same transaction.
        let rows = store
            .query(include_str!("queries/step/complete_many_expand_read.sql"))
            .bind(claims)
            .fetch_all(&mut *tx)
            .await?;
        let planned = expansion::plan(&unique, expansion_read(&rows)?)?;
        if !planned.payload.is_empty() {
            store
                .query(include_str!("queries/step/complete_many_expand.sql"))
                .bind(&planned.payload.json)
                .bind(p.now)
                .bind(&p.processor)
                .execute(&mut *tx)
                .await?;
        }
        if planned.payload.bumps > 0 {
            store
                .query(include_str!("queries/step/complete_many_expand_bump.sql"))
                .bind(&planned.payload.json)
                .bind(p.now)
                .execute(&mut *tx)
                .await?;
        }
        let completions: Vec<&StepCompletion> = planned.completions.iter().collect();
        payload = batch::completion_payload(&completions);
    }
    let token = uuid::Uuid::now_v7();
    let rows = store
        .query(include_str!("queries/step/complete_many_apply.sql"))
        .bind(payload)
        .bind(p.now)
        .bind(&p.processor)
        .bind(token)
        .fetch_all(&mut *tx)
        .await?;
    let mut newly_enqueued = HashSet::new();
    let mut counts = Vec::new();
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        match kind.as_str() {
            "applied" | "successor" => {
                let s: StepRow = serde_json::from_value(data(r)?)?;
                let state = StepState::from_str(&s.state).map_err(|e| corrupt("steps", e))?;
                if kind == "applied" {
                    report.applied.push(AppliedStep {
                        step_uuid: s.step_uuid,
                        task_uuid: s.task_uuid,
                        state,
                    });
                } else if state == StepState::Enqueued {
                    newly_enqueued.insert(s.task_uuid);
                    report.enqueued.push(EnqueuedStep {
                        step_uuid: s.step_uuid,
                        task_uuid: s.task_uuid,
                        namespace: s.namespace,
                    });
                }
            }
            "count" => counts.push(count_row(r)?),
            _ => {}
        }
    }
    let applied: HashSet<uuid::Uuid> = report.applied.iter().map(|a| a.step_uuid).collect();
    report.rejected = unique
        .iter()
        .map(|c| c.step_uuid)
        .filter(|u| !applied.contains(u))
        .collect();
    report.rejected.extend(duplicates);
    let plans = batch::plans_from_counts(counts, &newly_enqueued);
    let eager_limit = p
        .eager
        .as_ref()
        .map(|e| e.limit.min(report.enqueued.len() as u32))
        .unwrap_or(0);
    if plans.expected.is_empty() && eager_limit == 0 {
        report.events_stored = domain_events::insert_with_results(store, &mut tx, &unique, token, p.now).await?;
        store.commit(tx).await?;
        if report.events_stored > 0 {
            store.event_signal.bump();
        }
        return Ok(report);
    }
    let successors: Vec<uuid::Uuid> = report.enqueued.iter().map(|s| s.step_uuid).collect();
    let (namespaces, lease_ms, worker_id) = match &p.eager {
        Some(e) => (e.namespaces.clone(), e.lease_ms, e.worker_id.clone()),
        None => (vec![], 0, p.processor.clone()),
    };
    let rows = store
        .query(include_str!("queries/step/complete_many_finish.sql"))
        .bind(plans.json)
        .bind(p.now)
        .bind(&p.processor)
        .bind(&successors)
        .bind(&namespaces)
        .bind(eager_limit as i64)
        .bind(p.now + lease_ms)
        .bind(&worker_id)
        .bind(json!({ "worker_id": worker_id, "eager": true }))
        .bind(uuid::Uuid::now_v7())
        .fetch_all(&mut *tx)
        .await?;
    report.events_stored = domain_events::insert_with_results(store, &mut tx, &unique, token, p.now).await?;
    store.commit(tx).await?;
    if report.events_stored > 0 {
        store.event_signal.bump();
    }
    for r in rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "task"))
    {
        let t: TaskRow = serde_json::from_value(data(r)?)?;
        let from = *plans
            .expected
            .get(&t.task_uuid)
            .ok_or_else(|| corrupt("tasks", format!("unplanned change of {}", t.task_uuid)))?;
        report.tasks.push(TaskChange {
            task_uuid: t.task_uuid,
            from,
            to: TaskState::from_str(&t.state).map_err(|e| corrupt("tasks", e))?,
        });
    }
    report.claimed = claimed_from_rows(&rows)?;
    let claimed: HashSet<uuid::Uuid> = report.claimed.iter().map(|c| c.step_uuid).collect();
    report.enqueued.retain(|s| !claimed.contains(&s.step_uuid));
    Ok(report)
}

/// Decodes the rows of `complete_many_expand_read.sql`.
fn expansion_read(rows: &[PgRow]) -> Result<expansion::ExpansionRead, StoreError> {
    #[derive(Deserialize)]
    struct Fact {
        task_uuid: uuid::Uuid,
        #[serde(default)]
        step_uuid: Option<uuid::Uuid>,
        #[serde(default)]
        definition: Option<Value>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        template_step_name: Option<String>,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        parent: Option<uuid::Uuid>,
        #[serde(default)]
        child: Option<uuid::Uuid>,
    }
    let missing = |what: &str| corrupt("steps", format!("expansion read row without {what}"));
    let mut read = expansion::ExpansionRead::default();
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let f: Fact = serde_json::from_value(data(r)?)?;
        match kind.as_str() {
            "held" => {
                read.held
                    .insert(f.step_uuid.ok_or_else(|| missing("step_uuid"))?, f.task_uuid);
            }
            "task" => {
                read.tasks.insert(f.task_uuid, f.definition.unwrap_or(Value::Null));
            }
            "step" => read.steps.entry(f.task_uuid).or_default().push(ExistingStep {
                step_uuid: f.step_uuid.ok_or_else(|| missing("step_uuid"))?,
                name: f.name.ok_or_else(|| missing("name"))?,
                template_step_name: f.template_step_name.ok_or_else(|| missing("template_step_name"))?,
                state: StepState::from_str(&f.state.ok_or_else(|| missing("state"))?)
                    .map_err(|e| corrupt("steps", e))?,
            }),
            "edge" => {
                read.edges.entry(f.task_uuid).or_default().insert((
                    f.parent.ok_or_else(|| missing("parent"))?,
                    f.child.ok_or_else(|| missing("child"))?,
                ));
            }
            _ => {}
        }
    }
    Ok(read)
}

pub(super) async fn lease_expired_list(store: &PgStore, now: i64, limit: u32) -> Result<Vec<ExpiredClaim>, StoreError> {
    let rows = store
        .query(include_str!("queries/step/lease_expired_list.sql"))
        .bind(now)
        .bind(limit as i64)
        .fetch_all_on(store)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ExpiredClaim {
                step_uuid: r.try_get("step_uuid")?,
                task_uuid: r.try_get("task_uuid")?,
                namespace: r.try_get("namespace")?,
                claim_seq: r.try_get("claim_seq")?,
                attempt: r.try_get::<i32, _>("attempts")? as u32,
                retry: serde_json::from_value(r.try_get::<Value, _>("retry_policy")?)?,
                step_type: r
                    .try_get::<String, _>("step_type")?
                    .parse()
                    .map_err(|reason: String| corrupt("steps", reason))?,
                past_deadline: r.try_get("past_deadline")?,
                name: r.try_get("name")?,
                template_step_name: r.try_get("template_step_name")?,
                task_namespace: r.try_get("task_namespace")?,
                task_name: r.try_get("task_name")?,
                task_version: r.try_get("task_version")?,
                correlation_id: r.try_get("correlation_id")?,
            })
        })
        .collect()
}

pub(super) fn step_view(r: &PgRow) -> Result<StepView, StoreError> {
    Ok(StepView {
        step_uuid: r.try_get("step_uuid")?,
        name: r.try_get("name")?,
        state: StepState::from_str(&r.try_get::<String, _>("state")?).map_err(|e| corrupt("steps", e))?,
        attempts: r.try_get::<i32, _>("attempts")? as u32,
        max_attempts: r.try_get::<i32, _>("max_attempts")? as u32,
        handler: r.try_get("handler_callable")?,
        result: r.try_get("result")?,
        error: r.try_get("error")?,
        completed_at: r.try_get("completed_at")?,
        ready_at: r.try_get("ready_at")?,
    })
}
