//! The dead-letter queue on PostgreSQL: the staleness sweep (candidates, then one
//! transaction that locks the candidate tasks with `SKIP LOCKED` and records them),
//! reads, and an operator's resolution (entry, task and step locked in that order,
//! decided in Rust, written, the task re-evaluated, committed). Task rows are always
//! locked before step rows, as every other writer does. The decisions are in
//! `store::dlq`.

use super::{count_row, data, PgStore, RunOnStore};
use crate::state::{StepState, TaskState};
use crate::store::dlq::{self, DlqEntry, DlqResolveOutcome, ResolveTarget, StaleCandidate};
use crate::store::*;
use serde_json::Value;
use sqlx::Row;
use std::collections::HashMap;
use std::str::FromStr;

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

pub(super) async fn sweep(store: &PgStore, p: DlqSweepParams) -> Result<DlqSweepReport, StoreError> {
    if p.limit == 0 {
        return Ok(DlqSweepReport::default());
    }
    let closed = store
        .query(include_str!("queries/dlq/close_finished.sql"))
        .bind(p.now)
        .execute_on(store)
        .await?
        .rows_affected();
    store.autocommitted();
    let t = dlq::threshold_binds(&p.thresholds);
    let rows = store
        .query(include_str!("queries/dlq/stale_candidates.sql"))
        .bind(p.now)
        .bind(t[0])
        .bind(t[1])
        .bind(t[2])
        .bind(t[3])
        .bind(t[4])
        .bind(t[5])
        .bind(t[6])
        .bind(t[7])
        .bind((p.limit as i64) * 4)
        .fetch_all_on(store)
        .await?;
    let found = rows
        .iter()
        .map(|r| Ok(serde_json::from_value::<StaleCandidate>(data(r)?)?))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let candidates = dlq::pick_candidates(found, p.limit);
    if candidates.is_empty() {
        return Ok(DlqSweepReport {
            closed,
            ..DlqSweepReport::default()
        });
    }
    let ids: Vec<uuid::Uuid> = candidates.iter().map(|c| c.task_uuid).collect();
    let mut tx = store.begin().await?;
    let locked = store
        .query(include_str!("queries/dlq/lock_tasks.sql"))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let mut now_state: HashMap<uuid::Uuid, (String, i64)> = HashMap::new();
    for r in &locked {
        now_state.insert(r.try_get("task_uuid")?, (r.try_get("state")?, r.try_get("updated_at")?));
    }
    // Only tasks locked here, unchanged since the candidates were read.
    let kept: Vec<StaleCandidate> = candidates
        .iter()
        .filter(|c| {
            now_state
                .get(&c.task_uuid)
                .is_some_and(|(state, at)| state == c.task_state.as_str() && *at == c.task_updated_at)
        })
        .cloned()
        .collect();
    let rows = if kept.is_empty() {
        vec![]
    } else {
        store
            .query(include_str!("queries/dlq/record.sql"))
            .bind(dlq::record_payload(&kept, p.now))
            .bind(p.now)
            .bind(&p.processor)
            .fetch_all(&mut *tx)
            .await?
    };
    store.commit(tx).await?;
    let ids: Vec<uuid::Uuid> = rows
        .iter()
        .map(|r| r.try_get::<uuid::Uuid, _>("entry_id"))
        .collect::<Result<_, _>>()?;
    Ok(DlqSweepReport {
        detected: candidates.iter().map(|c| c.reason).collect(),
        recorded: get_many(store, &ids).await?,
        closed,
    })
}

async fn get_many(store: &PgStore, ids: &[uuid::Uuid]) -> Result<Vec<DlqEntry>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/dlq/get_many.sql"))
        .bind(ids)
        .fetch_all_on(store)
        .await?;
    rows.iter().map(|r| Ok(serde_json::from_value(data(r)?)?)).collect()
}

pub(super) async fn get(store: &PgStore, entry_id: uuid::Uuid) -> Result<Option<DlqEntry>, StoreError> {
    Ok(get_many(store, &[entry_id]).await?.pop())
}

pub(super) async fn list(store: &PgStore, p: DlqListParams) -> Result<Vec<DlqEntry>, StoreError> {
    let rows = store
        .query(include_str!("queries/dlq/list.sql"))
        .bind(p.status.map(|s| s.as_str()))
        .bind(p.limit as i64)
        .bind(p.offset as i64)
        .bind(p.reason.map(|r| r.as_str()))
        .bind(p.namespace)
        .fetch_all_on(store)
        .await?;
    rows.iter().map(|r| Ok(serde_json::from_value(data(r)?)?)).collect()
}

pub(super) async fn open_count(store: &PgStore) -> Result<u64, StoreError> {
    let row = store
        .query(include_str!("queries/dlq/open_count.sql"))
        .fetch_one_on(store)
        .await?;
    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
}

pub(super) async fn resolve(store: &PgStore, p: DlqResolveParams) -> Result<DlqResolveOutcome, StoreError> {
    let step_uuid = p.action.step_uuid();
    let mut tx = store.begin().await?;
    let locked = store
        .query(include_str!("queries/dlq/resolve_lock.sql"))
        .bind(p.entry_id)
        .fetch_optional(&mut *tx)
        .await?;
    let read = match locked {
        Some(_) => {
            store
                .query(include_str!("queries/dlq/get_many.sql"))
                .bind(vec![p.entry_id])
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
    let Some(row) = read else {
        return Ok(DlqResolveOutcome::NotFound);
    };
    let entry: DlqEntry = serde_json::from_value(data(&row)?)?;
    let target: Option<ResolveTarget> = store
        .query(include_str!("queries/dlq/resolve_step.sql"))
        .bind(step_uuid)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| Ok::<_, StoreError>(serde_json::from_value(data(&r)?)?))
        .transpose()?;
    let plan = match dlq::plan_resolution(&entry, target.as_ref(), &p) {
        Ok(plan) => plan,
        Err(outcome) => return Ok(*outcome),
    };
    let path = plan
        .plan
        .path_json()
        .map(|s| serde_json::from_str::<Value>(&s))
        .transpose()?;
    let rows = store
        .query(include_str!("queries/dlq/resolve_apply.sql"))
        .bind(step_uuid)
        .bind(plan.plan.from)
        .bind(plan.plan.final_state())
        .bind(plan.plan.final_event())
        .bind(path)
        .bind(&plan.metadata)
        .bind(&p.processor)
        .bind(p.now)
        .bind(plan.result.as_ref())
        .bind(plan.reset_attempts)
        .bind(plan.satisfies)
        .bind(p.entry_id)
        .bind(p.action.resolution().as_str())
        .bind(p.note.as_deref())
        .bind(&p.actor)
        .fetch_all(&mut *tx)
        .await?;
    let mut applied = (false, false);
    let mut namespaces = Vec::new();
    for r in &rows {
        match r.try_get::<String, _>("kind")?.as_str() {
            "resolved" => applied.1 = true,
            kind => {
                applied.0 |= kind == "step";
                if r.try_get::<Option<String>, _>("state")?.as_deref() == Some("enqueued") {
                    namespaces.push(r.try_get::<String, _>("namespace")?);
                }
            }
        }
    }
    if applied != (true, true) {
        // Entry, task and step are locked: nothing can move between the read and the write.
        return Err(corrupt(
            "dead_letter_entries",
            format!("resolution of {} did not apply its compare-and-swap", p.entry_id),
        ));
    }
    let step_state: StepState = plan.plan.final_state().parse().map_err(|e| corrupt("steps", e))?;
    let events_stored =
        super::domain_events::insert_in_transaction(store, &mut tx, &dlq::resolution_events(&p, step_state), p.now)
            .await?;
    let task_uuids = vec![entry.task_uuid];
    let rows = store
        .query(include_str!("queries/task/step_counts_many.sql"))
        .bind(&task_uuids)
        .fetch_all(&mut *tx)
        .await?;
    let counts = rows.iter().map(count_row).collect::<Result<Vec<_>, _>>()?;
    let plans = dlq::resume_plans(counts, !namespaces.is_empty());
    let mut task = None;
    if !plans.expected.is_empty() {
        let rows = store
            .query(include_str!("queries/task/transition_many.sql"))
            .bind(&plans.json)
            .bind(p.now)
            .bind(&p.processor)
            .fetch_all(&mut *tx)
            .await?;
        if let Some(r) = rows.first() {
            #[derive(serde::Deserialize)]
            struct Moved {
                task_uuid: uuid::Uuid,
                state: String,
            }
            let m: Moved = serde_json::from_value(data(r)?)?;
            let from = *plans
                .expected
                .get(&m.task_uuid)
                .ok_or_else(|| corrupt("tasks", "unplanned change"))?;
            task = Some(TaskChange {
                task_uuid: m.task_uuid,
                from,
                to: TaskState::from_str(&m.state).map_err(|e| corrupt("tasks", e))?,
            });
        }
    }
    store.commit(tx).await?;
    if events_stored > 0 {
        store.event_signal.bump();
    }
    namespaces.sort();
    namespaces.dedup();
    let entry = get(store, p.entry_id)
        .await?
        .ok_or_else(|| corrupt("dead_letter_entries", format!("resolved entry {} vanished", p.entry_id)))?;
    Ok(DlqResolveOutcome::Resolved {
        entry,
        step_state,
        task,
        enqueued_namespaces: namespaces,
        events_stored,
    })
}
