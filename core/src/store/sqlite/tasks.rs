//! Task rows on SQLite: creation (one transaction for template, task, steps and
//! edges), evaluation after results, reads.

use super::rows::{self, json_opt, task_state};
use super::{parse_uuid, run_script, SqliteStore};
use crate::state::TaskState;
use crate::store::batch::{self, CountRow, ExistingTask, TaskPlans};
use crate::store::*;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;
use std::collections::{HashMap, HashSet};

pub(super) async fn create_many(store: &SqliteStore, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError> {
    if p.tasks.is_empty() {
        return Ok(vec![]);
    }
    let payload = batch::creation_payload(&p.tasks)?;
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/task/create_many.sql"))
            .bind(payload.templates)
            .bind(p.now)
            .bind(payload.tasks)
            .bind(&p.processor)
            .bind(payload.steps)
            .bind(payload.edges)
            .bind(payload.identity_hashes),
    )
    .await?;
    drop(conn);
    let mut created = HashSet::new();
    let mut existing = HashMap::new();
    for r in &rows {
        let task_uuid = parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?;
        if r.try_get::<String, _>("kind")? == "created" {
            created.insert(task_uuid);
        } else {
            let state = task_state(&r.try_get::<String, _>("state")?)?;
            existing.insert(
                r.try_get("identity_hash")?,
                ExistingTask {
                    task_uuid,
                    state,
                    namespace: r.try_get("namespace")?,
                },
            );
        }
    }
    // One writer at a time: every identity's holder is visible to the script.
    batch::creation_answers(&p.tasks, &created, &existing)
        .into_iter()
        .map(|a| {
            a.ok_or_else(|| StoreError::Conflict {
                constraint: "tasks_identity_unique".into(),
                message: "a duplicate's existing task could not be found".into(),
            })
        })
        .collect()
}

/// `count` rows (one per task and step state) as the finalizer's input.
pub(super) fn count_rows(rows: &[SqliteRow]) -> Result<Vec<CountRow>, StoreError> {
    rows.iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "count"))
        .map(|r| {
            Ok(CountRow {
                task_uuid: parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?,
                task_state: task_state(&r.try_get::<String, _>("task_state")?)?,
                hold_failed: r.try_get::<i64, _>("hold_failed")? != 0,
                step_state: r
                    .try_get::<Option<String>, _>("step_state")?
                    .map(|s| rows::step_state(&s))
                    .transpose()?,
                n: r.try_get::<i64, _>("n")? as u32,
            })
        })
        .collect()
}

/// Applies plans and commits the transaction a `_begin` script opened on `conn`.
pub(super) async fn transition_and_commit(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    plans: TaskPlans,
    now: i64,
    processor: &str,
) -> Result<Vec<TaskChange>, StoreError> {
    if plans.expected.is_empty() {
        run_script(conn, store.script("COMMIT;")).await?;
        return Ok(vec![]);
    }
    let rows = run_script(
        conn,
        store
            .script(include_str!("queries/task/transition_many_commit.sql"))
            .bind(plans.json)
            .bind(now)
            .bind(processor),
    )
    .await?;
    rows.iter().map(|r| task_change(r, &plans.expected)).collect()
}

/// A moved task, from a row with `task_uuid` and `state`.
pub(super) fn task_change(r: &SqliteRow, expected: &HashMap<uuid::Uuid, TaskState>) -> Result<TaskChange, StoreError> {
    let task_uuid = parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?;
    let from = *expected.get(&task_uuid).ok_or_else(|| StoreError::Corrupt {
        table: "tasks",
        reason: format!("unplanned change of {task_uuid}"),
    })?;
    Ok(TaskChange {
        task_uuid,
        from,
        to: task_state(&r.try_get::<String, _>("state")?)?,
    })
}

/// The TaskFinalizer's entry point: evaluates tasks and moves them on.
pub(super) async fn evaluate_many(
    store: &SqliteStore,
    task_uuids: Vec<uuid::Uuid>,
    now: i64,
    processor: &str,
) -> Result<Vec<TaskChange>, StoreError> {
    if task_uuids.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<String> = task_uuids.iter().map(|u| u.to_string()).collect();
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/task/step_counts_many_begin.sql"))
            .bind(serde_json::to_string(&ids)?),
    )
    .await?;
    let plans = batch::plans_from_counts(count_rows(&rows)?, &HashSet::new());
    transition_and_commit(store, &mut conn, plans, now, processor).await
}

pub(super) async fn get(store: &SqliteStore, task_uuid: uuid::Uuid) -> Result<Option<TaskView>, StoreError> {
    let mut conn = store.reader().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/task/get_with_steps.sql"))
            .bind(task_uuid.to_string()),
    )
    .await?;
    let Some(r) = rows
        .iter()
        .find(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "task"))
    else {
        return Ok(None);
    };
    let steps = rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "step"));
    Ok(Some(TaskView {
        task_uuid,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        state: task_state(&r.try_get::<String, _>("state")?)?,
        context: json_opt("tasks", r.try_get("context")?)?.unwrap_or(Value::Null),
        correlation_id: parse_uuid("tasks", &r.try_get::<String, _>("correlation_id")?)?,
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
        steps: steps.map(rows::step_view).collect::<Result<_, _>>()?,
    }))
}

pub(super) async fn list(store: &SqliteStore, p: TaskListParams) -> Result<Vec<TaskSummary>, StoreError> {
    let rows = store
        .query(include_str!("queries/task/list.sql"))
        .bind(p.state.map(|s| s.as_str()))
        .bind(p.namespace)
        .bind(p.limit as i64)
        .bind(p.offset as i64)
        .fetch_all(&mut *store.reader().await?)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TaskSummary {
                task_uuid: parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?,
                namespace: r.try_get("namespace")?,
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                state: task_state(&r.try_get::<String, _>("state")?)?,
                step_count: r.try_get::<i64, _>("step_count")? as u32,
                created_at: r.try_get("created_at")?,
                completed_at: r.try_get("completed_at")?,
            })
        })
        .collect()
}

pub(super) async fn cancel_many(
    store: &SqliteStore,
    p: TaskCancelManyParams,
) -> Result<Vec<TaskCancelOutcome>, StoreError> {
    if p.task_uuids.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<String> = p.task_uuids.iter().map(|u| u.to_string()).collect();
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/task/cancel_many.sql"))
            .bind(serde_json::to_string(&ids)?)
            .bind(serde_json::to_string(&cancel::cancellable_task_states())?)
            .bind(serde_json::to_string(&cancel::cancellable_step_states())?)
            .bind(p.now)
            .bind(&p.processor)
            .bind(cancel::cancel_metadata(p.reason.as_deref()).to_string()),
    )
    .await?;
    drop(conn);
    let (mut cancelled, mut steps, mut states) = (HashMap::new(), HashMap::new(), HashMap::new());
    for r in &rows {
        let task_uuid = parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?;
        match r.try_get::<String, _>("kind")?.as_str() {
            "task" => {
                cancelled.insert(task_uuid, r.try_get::<String, _>("namespace")?);
            }
            "step" => *steps.entry(task_uuid).or_insert(0u32) += 1,
            _ => {
                states.insert(task_uuid, task_state(&r.try_get::<String, _>("state")?)?);
            }
        }
    }
    Ok(cancel::outcomes(&p.task_uuids, &cancelled, &steps, &states))
}
