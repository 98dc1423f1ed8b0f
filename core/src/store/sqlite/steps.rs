//! Step rows on SQLite: claims, results, leases and releases.

use super::rows::{json_opt, step_state};
use super::{domain_events, parse_uuid, rollback, run_script, tasks, SqliteStore};
use crate::orchestration::step_expansion::ExistingStep;
use crate::state::StepState;
use crate::store::*;
use crate::store::{batch, expansion};
use crate::template::RetryPolicy;
use serde_json::{json, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};

pub(super) async fn claim_ready_many(
    store: &SqliteStore,
    p: StepClaimReadyManyParams,
) -> Result<Vec<ClaimedStep>, StoreError> {
    if p.limit == 0 {
        return Ok(vec![]);
    }
    let retry_path = batch::retry_claim_path();
    let resume = batch::retry_resume_plan();
    let metadata = json!({ "worker_id": p.worker_id }).to_string();
    let token = uuid::Uuid::now_v7().to_string();
    let mut conn = store.writer().await?;
    let all_rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/step/claim_ready_many.sql"))
            .bind(&p.namespace)
            .bind(p.now)
            .bind(p.limit as i64)
            .bind(p.now + p.lease_ms)
            .bind(&p.worker_id)
            .bind(&metadata)
            .bind(retry_path)
            .bind(&token)
            .bind(resume.path_json())
            .bind(resume.final_event()),
    )
    .await?;
    drop(conn);
    claimed_from_rows(all_rows)
}

/// Decodes the rows of a claim script: `step` rows (the claimed steps) and their
/// hydration (`task_context` and `dep` rows); other kinds are ignored.
pub(super) fn claimed_from_rows(all_rows: Vec<SqliteRow>) -> Result<Vec<ClaimedStep>, StoreError> {
    let mut rows = Vec::new();
    let mut context_rows = Vec::new();
    for r in all_rows {
        match r.try_get::<String, _>("kind")?.as_str() {
            "step" => rows.push(r),
            "task_context" | "dep" => context_rows.push(r),
            _ => {}
        }
    }
    struct TaskInfo {
        namespace: String,
        name: String,
        version: String,
        context: Value,
        correlation_id: uuid::Uuid,
    }
    let mut task_info: HashMap<String, TaskInfo> = HashMap::new();
    let mut deps: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
    for r in &context_rows {
        let kind: String = r.try_get("kind")?;
        let owner: String = r.try_get("owner")?;
        let payload = json_opt("tasks", r.try_get("payload")?)?.unwrap_or(Value::Null);
        if kind == "task_context" {
            task_info.insert(
                owner,
                TaskInfo {
                    namespace: r.try_get("task_namespace")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    context: payload,
                    correlation_id: parse_uuid("tasks", &r.try_get::<String, _>("correlation_id")?)?,
                },
            );
        } else {
            deps.entry(owner).or_default().insert(r.try_get("name")?, payload);
        }
    }
    rows.iter()
        .map(|r| {
            let step_id: String = r.try_get("step_uuid")?;
            let task_id: String = r.try_get("task_uuid")?;
            let info = task_info.get(&task_id).ok_or_else(|| StoreError::Corrupt {
                table: "tasks",
                reason: format!("task {task_id} of step {step_id} missing"),
            })?;
            let retry: RetryPolicy = serde_json::from_str(&r.try_get::<String, _>("retry_policy")?)?;
            Ok(ClaimedStep {
                step_uuid: parse_uuid("steps", &step_id)?,
                task_uuid: parse_uuid("steps", &task_id)?,
                claim_seq: r.try_get("claim_seq")?,
                name: r.try_get("name")?,
                template_step_name: r.try_get("template_step_name")?,
                namespace: r.try_get("namespace")?,
                task_namespace: info.namespace.clone(),
                task_name: info.name.clone(),
                task_version: info.version.clone(),
                step_type: r.try_get("step_type")?,
                handler_callable: r.try_get("handler_callable")?,
                handler_method: r.try_get("handler_method")?,
                handler_initialization: json_opt("steps", r.try_get("handler_initialization")?)?.unwrap_or(Value::Null),
                retry,
                timeout_ms: r.try_get("timeout_ms")?,
                attempt: r.try_get::<i64, _>("attempts")? as u32,
                lease_expires_at: r.try_get("lease_expires_at")?,
                deadline_at: r.try_get("deadline_at")?,
                checkpoint: json_opt("steps", r.try_get("checkpoint")?)?,
                context: info.context.clone(),
                dependency_results: deps.remove(&step_id).unwrap_or_default(),
                correlation_id: info.correlation_id,
            })
        })
        .collect()
}

pub(super) async fn complete_many(
    store: &SqliteStore,
    p: StepCompleteManyParams,
) -> Result<CompletionReport, StoreError> {
    let mut report = CompletionReport::default();
    if p.completions.is_empty() {
        return Ok(report);
    }
    let (unique, duplicates) = batch::dedupe(&p.completions);
    let token = uuid::Uuid::now_v7().to_string();
    let mut conn = store.writer().await?;
    let rows = match expansion::read_payload(&unique) {
        None => {
            run_script(
                &mut conn,
                store
                    .script(concat!(
                        "BEGIN IMMEDIATE;\n",
                        include_str!("queries/step/complete_many_apply.sql")
                    ))
                    .bind(batch::completion_payload(&unique))
                    .bind(p.now)
                    .bind(&p.processor)
                    .bind(&token),
            )
            .await?
        }
        Some(claims) => {
            // Decision and batch outcomes: read, plan the steps they create, then
            // write those and apply the results, in the same transaction.
            let read = run_script(
                &mut conn,
                store
                    .script(concat!(
                        "BEGIN IMMEDIATE;\n",
                        include_str!("queries/step/complete_many_expand_read.sql")
                    ))
                    .bind(claims),
            )
            .await?;
            let planned = match expansion_read(&read).and_then(|r| expansion::plan(&unique, r)) {
                Ok(planned) => planned,
                Err(e) => {
                    rollback(&mut conn).await;
                    return Err(e);
                }
            };
            let completions: Vec<&StepCompletion> = planned.completions.iter().collect();
            run_script(
                &mut conn,
                store
                    .script(concat!(
                        include_str!("queries/step/complete_many_expand.sql"),
                        include_str!("queries/step/complete_many_apply.sql")
                    ))
                    .bind(batch::completion_payload(&completions))
                    .bind(p.now)
                    .bind(&p.processor)
                    .bind(&token)
                    .bind(planned.payload.json),
            )
            .await?
        }
    };
    let mut newly_enqueued = HashSet::new();
    for r in &rows {
        match r.try_get::<String, _>("kind")?.as_str() {
            "applied" => report.applied.push(AppliedStep {
                step_uuid: parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?,
                task_uuid: parse_uuid("steps", &r.try_get::<String, _>("task_uuid")?)?,
                state: step_state(&r.try_get::<String, _>("state")?)?,
            }),
            "successor" if r.try_get::<String, _>("state")? == StepState::Enqueued.as_str() => {
                let step = EnqueuedStep {
                    step_uuid: parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?,
                    task_uuid: parse_uuid("steps", &r.try_get::<String, _>("task_uuid")?)?,
                    namespace: r.try_get("namespace")?,
                };
                newly_enqueued.insert(step.task_uuid);
                report.enqueued.push(step);
            }
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
    report.events_stored = domain_events::insert_with_results(store, &mut conn, &unique, &token, p.now).await?;
    let plans = batch::plans_from_counts(tasks::count_rows(&rows)?, &newly_enqueued);
    let eager_limit = p
        .eager
        .as_ref()
        .map(|e| e.limit.min(report.enqueued.len() as u32))
        .unwrap_or(0);
    let Some(eager) = p.eager.as_ref().filter(|_| eager_limit > 0) else {
        report.tasks = tasks::transition_and_commit(store, &mut conn, plans, p.now, &p.processor).await?;
        drop(conn);
        if report.events_stored > 0 {
            store.event_signal.bump();
        }
        return Ok(report);
    };
    let successors: Vec<String> = report.enqueued.iter().map(|s| s.step_uuid.to_string()).collect();
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/step/complete_many_finish.sql"))
            .bind(plans.json)
            .bind(p.now)
            .bind(&p.processor)
            .bind(serde_json::to_string(&successors)?)
            .bind(serde_json::to_string(&eager.namespaces)?)
            .bind(eager_limit as i64)
            .bind(p.now + eager.lease_ms)
            .bind(&eager.worker_id)
            .bind(json!({ "worker_id": eager.worker_id, "eager": true }).to_string())
            .bind(uuid::Uuid::now_v7().to_string()),
    )
    .await?;
    drop(conn);
    if report.events_stored > 0 {
        store.event_signal.bump();
    }
    for r in rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "task"))
    {
        report.tasks.push(tasks::task_change(r, &plans.expected)?);
    }
    report.claimed = claimed_from_rows(rows)?;
    let claimed: HashSet<uuid::Uuid> = report.claimed.iter().map(|c| c.step_uuid).collect();
    report.enqueued.retain(|s| !claimed.contains(&s.step_uuid));
    Ok(report)
}

/// Decodes the rows of `complete_many_expand_read.sql`.
fn expansion_read(rows: &[SqliteRow]) -> Result<expansion::ExpansionRead, StoreError> {
    let mut read = expansion::ExpansionRead::default();
    for r in rows {
        let task = parse_uuid("steps", &r.try_get::<String, _>("task_uuid")?)?;
        match r.try_get::<String, _>("kind")?.as_str() {
            "held" => {
                read.held
                    .insert(parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?, task);
            }
            "task" => {
                let definition = json_opt("templates", r.try_get("value")?)?.unwrap_or(Value::Null);
                read.tasks.insert(task, definition);
            }
            "step" => read.steps.entry(task).or_default().push(ExistingStep {
                step_uuid: parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?,
                name: r.try_get("name")?,
                template_step_name: r.try_get("template_step_name")?,
                state: step_state(&r.try_get::<String, _>("value")?)?,
            }),
            "edge" => {
                let child = parse_uuid("step_edges", &r.try_get::<String, _>("step_uuid")?)?;
                let parent = parse_uuid("step_edges", &r.try_get::<String, _>("other")?)?;
                read.edges.entry(task).or_default().insert((parent, child));
            }
            _ => {}
        }
    }
    Ok(read)
}

pub(super) async fn lease_expired_list(
    store: &SqliteStore,
    now: i64,
    limit: u32,
) -> Result<Vec<ExpiredClaim>, StoreError> {
    let rows = store
        .query(include_str!("queries/step/lease_expired_list.sql"))
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *store.reader().await?)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ExpiredClaim {
                step_uuid: parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?,
                task_uuid: parse_uuid("steps", &r.try_get::<String, _>("task_uuid")?)?,
                namespace: r.try_get("namespace")?,
                claim_seq: r.try_get("claim_seq")?,
                attempt: r.try_get::<i64, _>("attempts")? as u32,
                retry: serde_json::from_str(&r.try_get::<String, _>("retry_policy")?)?,
                step_type: r
                    .try_get::<String, _>("step_type")?
                    .parse()
                    .map_err(|reason| StoreError::Corrupt { table: "steps", reason })?,
                past_deadline: r.try_get::<i64, _>("past_deadline")? == 1,
                name: r.try_get("name")?,
                template_step_name: r.try_get("template_step_name")?,
                task_namespace: r.try_get("task_namespace")?,
                task_name: r.try_get("task_name")?,
                task_version: r.try_get("task_version")?,
                correlation_id: parse_uuid("tasks", &r.try_get::<String, _>("correlation_id")?)?,
            })
        })
        .collect()
}

pub(super) async fn lease_extend_many(store: &SqliteStore, p: StepLeaseExtendManyParams) -> Result<u64, StoreError> {
    if p.claims.is_empty() {
        return Ok(0);
    }
    let done = store
        .query(include_str!("queries/step/lease_extend_many.sql"))
        .bind(batch::claims_payload(&p.claims))
        .bind(p.lease_expires_at)
        .bind(p.now)
        .execute(&mut *store.writer().await?)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn release_many(store: &SqliteStore, p: StepReleaseManyParams) -> Result<Vec<uuid::Uuid>, StoreError> {
    if p.claims.is_empty() {
        return Ok(vec![]);
    }
    let (event, metadata) = batch::release_audit(p.reason);
    let rows = store
        .query(include_str!("queries/step/release_many.sql"))
        .bind(batch::claims_payload(&p.claims))
        .bind(p.now)
        .bind(&p.processor)
        .bind(event)
        .bind(metadata)
        .fetch_all(&mut *store.writer().await?)
        .await?;
    rows.iter()
        .map(|r| parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?))
        .collect()
}
