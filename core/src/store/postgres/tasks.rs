//! Task rows on PostgreSQL: creation, evaluation, reads.

use super::{count_row, data, PgStore, RunOnStore};
use crate::state::{StepState, TaskState};
use crate::store::batch::{self, ExistingTask};
use crate::store::*;
use serde::Deserialize;
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

fn existing_from_rows(rows: &[PgRow], existing: &mut HashMap<String, ExistingTask>) -> Result<(), StoreError> {
    for r in rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "existing"))
    {
        let state = TaskState::from_str(&r.try_get::<String, _>("state")?).map_err(|e| corrupt("tasks", e))?;
        existing.insert(
            r.try_get("identity_hash")?,
            ExistingTask {
                task_uuid: r.try_get("task_uuid")?,
                state,
                namespace: r.try_get("namespace")?,
            },
        );
    }
    Ok(())
}

pub(super) async fn create_many(store: &PgStore, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError> {
    if p.tasks.is_empty() {
        return Ok(vec![]);
    }
    let payload = batch::creation_payload(&p.tasks)?;
    let rows = store
        .query(include_str!("queries/task/create_many.sql"))
        .bind(payload.templates)
        .bind(p.now)
        .bind(payload.tasks)
        .bind(&p.processor)
        .bind(payload.steps)
        .bind(payload.edges)
        .bind(&payload.identity_hashes)
        .fetch_all_on(store)
        .await?;
    store.autocommitted();
    let mut created = HashSet::new();
    let mut existing = HashMap::new();
    for r in rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "created"))
    {
        created.insert(r.try_get::<uuid::Uuid, _>("task_uuid")?);
    }
    existing_from_rows(&rows, &mut existing)?;
    let mut answers = batch::creation_answers(&p.tasks, &created, &existing);
    if answers.iter().any(Option::is_none) {
        // A concurrent transaction created the holder after this statement's snapshot
        // (it waited on the unique index, then skipped): read it now.
        let rows = store
            .query(include_str!("queries/task/find_by_identity_many.sql"))
            .bind(&payload.identity_hashes)
            .fetch_all_on(store)
            .await?;
        existing_from_rows(&rows, &mut existing)?;
        answers = batch::creation_answers(&p.tasks, &created, &existing);
    }
    answers
        .into_iter()
        .map(|a| {
            a.ok_or_else(|| StoreError::Conflict {
                constraint: "tasks_identity_unique".into(),
                message: "a duplicate's existing task could not be found".into(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct TaskRow {
    task_uuid: uuid::Uuid,
    state: String,
}

pub(super) async fn evaluate_many(
    store: &PgStore,
    task_uuids: Vec<uuid::Uuid>,
    now: i64,
    processor: &str,
) -> Result<Vec<TaskChange>, StoreError> {
    if task_uuids.is_empty() {
        return Ok(vec![]);
    }
    let mut tx = store.begin().await?;
    store
        .query(include_str!("queries/task/lock_many.sql"))
        .bind(&task_uuids)
        .execute(&mut *tx)
        .await?;
    let rows = store
        .query(include_str!("queries/task/step_counts_many.sql"))
        .bind(&task_uuids)
        .fetch_all(&mut *tx)
        .await?;
    let counts = rows.iter().map(count_row).collect::<Result<Vec<_>, _>>()?;
    let plans = batch::plans_from_counts(counts, &HashSet::new());
    if plans.expected.is_empty() {
        store.commit(tx).await?;
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/task/transition_many.sql"))
        .bind(&plans.json)
        .bind(now)
        .bind(processor)
        .fetch_all(&mut *tx)
        .await?;
    store.commit(tx).await?;
    rows.iter()
        .map(|r| {
            let t: TaskRow = serde_json::from_value(data(r)?)?;
            let from = *plans
                .expected
                .get(&t.task_uuid)
                .ok_or_else(|| corrupt("tasks", "unplanned change"))?;
            Ok(TaskChange {
                task_uuid: t.task_uuid,
                from,
                to: TaskState::from_str(&t.state).map_err(|e| corrupt("tasks", e))?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct StepJson {
    step_uuid: uuid::Uuid,
    name: String,
    state: String,
    attempts: u32,
    max_attempts: u32,
    handler: String,
    result: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    completed_at: Option<i64>,
    ready_at: Option<i64>,
}

pub(super) async fn get(store: &PgStore, task_uuid: uuid::Uuid) -> Result<Option<TaskView>, StoreError> {
    let Some(r) = store
        .query(include_str!("queries/task/get_with_steps.sql"))
        .bind(task_uuid)
        .fetch_optional_on(store)
        .await?
    else {
        return Ok(None);
    };
    let steps: Vec<StepJson> = serde_json::from_value(r.try_get::<serde_json::Value, _>("steps")?)?;
    Ok(Some(TaskView {
        task_uuid,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        state: TaskState::from_str(&r.try_get::<String, _>("state")?).map_err(|e| corrupt("tasks", e))?,
        context: r.try_get("context")?,
        correlation_id: r.try_get("correlation_id")?,
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
        steps: steps
            .into_iter()
            .map(|s| {
                Ok(StepView {
                    step_uuid: s.step_uuid,
                    name: s.name,
                    state: StepState::from_str(&s.state).map_err(|e| corrupt("steps", e))?,
                    attempts: s.attempts,
                    max_attempts: s.max_attempts,
                    handler: s.handler,
                    result: s.result,
                    error: s.error,
                    completed_at: s.completed_at,
                    ready_at: s.ready_at,
                })
            })
            .collect::<Result<_, StoreError>>()?,
    }))
}

pub(super) async fn list(store: &PgStore, p: TaskListParams) -> Result<Vec<TaskSummary>, StoreError> {
    let rows = store
        .query(include_str!("queries/task/list.sql"))
        .bind(p.state.map(|s| s.as_str()))
        .bind(p.namespace)
        .bind(p.limit as i64)
        .bind(p.offset as i64)
        .fetch_all_on(store)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TaskSummary {
                task_uuid: r.try_get("task_uuid")?,
                namespace: r.try_get("namespace")?,
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                state: TaskState::from_str(&r.try_get::<String, _>("state")?).map_err(|e| corrupt("tasks", e))?,
                step_count: r.try_get::<i32, _>("step_count")? as u32,
                created_at: r.try_get("created_at")?,
                completed_at: r.try_get("completed_at")?,
            })
        })
        .collect()
}

pub(super) async fn cancel_many(
    store: &PgStore,
    p: TaskCancelManyParams,
) -> Result<Vec<TaskCancelOutcome>, StoreError> {
    if p.task_uuids.is_empty() {
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/task/cancel_many.sql"))
        .bind(&p.task_uuids)
        .bind(cancel::cancellable_task_states())
        .bind(cancel::cancellable_step_states())
        .bind(p.now)
        .bind(&p.processor)
        .bind(cancel::cancel_metadata(p.reason.as_deref()))
        .fetch_all_on(store)
        .await?;
    store.autocommitted();
    let (mut cancelled, mut steps, mut states) = (HashMap::new(), HashMap::new(), HashMap::new());
    for r in &rows {
        let task_uuid: uuid::Uuid = r.try_get("task_uuid")?;
        match r.try_get::<String, _>("kind")?.as_str() {
            "task" => {
                cancelled.insert(task_uuid, r.try_get::<String, _>("namespace")?);
            }
            "step" => *steps.entry(task_uuid).or_insert(0u32) += 1,
            _ => {
                let state = TaskState::from_str(&r.try_get::<String, _>("state")?).map_err(|e| corrupt("tasks", e))?;
                states.insert(task_uuid, state);
            }
        }
    }
    Ok(cancel::outcomes(&p.task_uuids, &cancelled, &steps, &states))
}
