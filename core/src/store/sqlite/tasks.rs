//! Task rows on SQLite: creation (one transaction for template, task, steps and
//! edges), evaluation after results, reads.

use super::rows::{self, json_opt, task_state};
use super::{parse_uuid, run_script, SqliteStore};
use crate::orchestration::task_finalizer;
use crate::state::{StepCounts, StepEvent, TaskState};
use crate::store::plan::TransitionPlan;
use crate::store::*;
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

pub(super) async fn create_many(store: &SqliteStore, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError> {
    if p.tasks.is_empty() {
        return Ok(vec![]);
    }
    let root_plan = TransitionPlan::new_step(&[StepEvent::Enqueue]).expect("enqueue from pending is legal");
    let child_plan = TransitionPlan::new_step(&[]).expect("creation is legal");

    let mut templates = BTreeMap::new();
    let mut task_rows = Vec::with_capacity(p.tasks.len());
    for t in &p.tasks {
        templates.entry(t.template.content_hash.clone()).or_insert_with(|| {
            json!({
                "content_hash": t.template.content_hash, "namespace": t.template.namespace,
                "name": t.template.name, "version": t.template.version,
                "definition": t.template.definition.to_string(),
            })
        });
        let plan = task_finalizer::creation_plan(!t.steps.is_empty());
        task_rows.push(json!({
            "task_uuid": t.task_uuid.to_string(), "template_hash": t.template.content_hash,
            "namespace": t.template.namespace, "name": t.template.name, "version": t.template.version,
            "state": plan.final_state(), "context": t.context.to_string(), "identity_hash": t.identity_hash,
            "correlation_id": t.correlation_id.to_string(), "priority": t.priority,
            "hold_failed": t.hold_failed as i64, "step_count": t.steps.len(),
            "transition_event": plan.final_event(), "transition_path": plan.path_json(),
        }));
    }

    let mut step_rows = Vec::new();
    let mut edge_rows = Vec::new();
    for t in &p.tasks {
        for s in &t.steps {
            let plan = if s.parents.is_empty() { &root_plan } else { &child_plan };
            step_rows.push(json!({
                "step_uuid": s.step_uuid.to_string(), "task_uuid": t.task_uuid.to_string(),
                "namespace": t.template.namespace, "name": s.name, "template_step_name": s.template_step_name,
                "step_type": s.step_type, "handler_callable": s.handler_callable, "handler_method": s.handler_method,
                "handler_initialization": s.handler_initialization.to_string(),
                "retry_policy": serde_json::to_string(&s.retry)?, "max_attempts": s.retry.max_attempts,
                "timeout_ms": s.timeout_ms, "state": plan.final_state(), "pending_parents": s.parents.len(),
                "transition_event": plan.final_event(), "transition_path": plan.path_json(),
            }));
            for &parent in &s.parents {
                edge_rows.push(json!({
                    "task_uuid": t.task_uuid.to_string(),
                    "parent": t.steps[parent].step_uuid.to_string(),
                    "child": s.step_uuid.to_string(),
                }));
            }
        }
    }
    let hashes: Vec<&str> = p.tasks.iter().map(|t| t.identity_hash.as_str()).collect();
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/task/create_many.sql"))
            .bind(Value::Array(templates.into_values().collect()).to_string())
            .bind(p.now)
            .bind(Value::Array(task_rows).to_string())
            .bind(&p.processor)
            .bind(Value::Array(step_rows).to_string())
            .bind(Value::Array(edge_rows).to_string())
            .bind(serde_json::to_string(&hashes)?),
    )
    .await?;
    drop(conn);
    let mut inserted = HashSet::new();
    let mut existing = HashMap::new();
    for r in &rows {
        match r.try_get::<String, _>("kind")?.as_str() {
            "created" => {
                inserted.insert(r.try_get::<String, _>("task_uuid")?);
            }
            _ => {
                let hash: String = r.try_get("identity_hash")?;
                let uuid = parse_uuid("tasks", &r.try_get::<String, _>("task_uuid")?)?;
                let namespace: String = r.try_get("namespace")?;
                existing.insert(hash, (uuid, task_state(&r.try_get::<String, _>("state")?)?, namespace));
            }
        }
    }

    let mut out = Vec::with_capacity(p.tasks.len());
    for t in &p.tasks {
        if inserted.contains(&t.task_uuid.to_string()) {
            let state = TaskState::from_str(task_finalizer::creation_plan(!t.steps.is_empty()).final_state()).expect("plan states are valid");
            out.push(TaskCreated {
                task_uuid: t.task_uuid,
                created: true,
                state,
                enqueued_steps: t.steps.iter().filter(|s| s.parents.is_empty()).count(),
                namespace: t.template.namespace.clone(),
            });
        } else {
            let (uuid, state, namespace) = existing.get(&t.identity_hash).cloned().ok_or_else(|| StoreError::Conflict {
                constraint: "tasks_identity_unique".into(),
                message: "a task with the same identity was created in the same batch".into(),
            })?;
            out.push(TaskCreated { task_uuid: uuid, created: false, state, enqueued_steps: 0, namespace });
        }
    }
    Ok(out)
}

/// Plans from `count` rows (one per task and step state): the TaskFinalizer's rule
/// applied to each task. Returns the plan JSON for `transition_many_commit.sql` and
/// each planned task's expected state.
pub(super) fn plans_from_counts(
    rows: &[SqliteRow],
    newly_enqueued: &HashSet<uuid::Uuid>,
) -> Result<(Vec<Value>, HashMap<String, TaskState>), StoreError> {
    let mut per_task: BTreeMap<String, (TaskState, bool, StepCounts)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "count")) {
        let uuid: String = r.try_get("task_uuid")?;
        let task_state = task_state(&r.try_get::<String, _>("task_state")?)?;
        let hold: i64 = r.try_get("hold_failed")?;
        let entry = per_task.entry(uuid).or_insert_with(|| (task_state, hold != 0, StepCounts::default()));
        if let Some(step_state) = r.try_get::<Option<String>, _>("step_state")? {
            entry.2.add(rows::step_state(&step_state)?, r.try_get::<i64, _>("n")? as u32);
        }
    }
    let mut plans = Vec::new();
    let mut expected = HashMap::new();
    for (uuid, (state, hold, counts)) in &per_task {
        let task_uuid = parse_uuid("tasks", uuid)?;
        if let Some(plan) = task_finalizer::plan_after_results(*state, *hold, counts, newly_enqueued.contains(&task_uuid)) {
            plans.push(json!({
                "task_uuid": uuid, "expected": state.as_str(), "state": plan.final_state(),
                "event": plan.final_event(), "path": plan.path_json(),
            }));
            expected.insert(uuid.clone(), *state);
        }
    }
    Ok((plans, expected))
}

/// Applies plans and commits the transaction a `_begin` script opened on `conn`.
pub(super) async fn transition_and_commit(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    plans: Vec<Value>,
    expected: &HashMap<String, TaskState>,
    now: i64,
    processor: &str,
) -> Result<Vec<TaskChange>, StoreError> {
    if plans.is_empty() {
        run_script(conn, store.script("COMMIT;")).await?;
        return Ok(vec![]);
    }
    let rows = run_script(
        conn,
        store.script(include_str!("queries/task/transition_many_commit.sql")).bind(Value::Array(plans).to_string()).bind(now).bind(processor),
    )
    .await?;
    rows.iter()
        .map(|r| {
            let uuid: String = r.try_get("task_uuid")?;
            Ok(TaskChange {
                task_uuid: parse_uuid("tasks", &uuid)?,
                from: expected[&uuid],
                to: task_state(&r.try_get::<String, _>("state")?)?,
            })
        })
        .collect()
}

/// The TaskFinalizer's entry point: evaluates tasks and moves them on.
pub(super) async fn evaluate_many(store: &SqliteStore, task_uuids: Vec<uuid::Uuid>, now: i64, processor: &str) -> Result<Vec<TaskChange>, StoreError> {
    if task_uuids.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<String> = task_uuids.iter().map(|u| u.to_string()).collect();
    let mut conn = store.writer().await?;
    let rows = run_script(&mut conn, store.script(include_str!("queries/task/step_counts_many_begin.sql")).bind(serde_json::to_string(&ids)?)).await?;
    let (plans, expected) = plans_from_counts(&rows, &HashSet::new())?;
    transition_and_commit(store, &mut conn, plans, &expected, now, processor).await
}

pub(super) async fn get(store: &SqliteStore, task_uuid: uuid::Uuid) -> Result<Option<TaskView>, StoreError> {
    let mut conn = store.reader().await?;
    let rows = run_script(&mut conn, store.script(include_str!("queries/task/get_with_steps.sql")).bind(task_uuid.to_string())).await?;
    let Some(r) = rows.iter().find(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "task")) else {
        return Ok(None);
    };
    let steps = rows.iter().filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "step"));
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
