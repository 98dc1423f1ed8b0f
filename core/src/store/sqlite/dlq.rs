//! The dead-letter queue on SQLite: the staleness sweep (candidates and record in one
//! `BEGIN IMMEDIATE` transaction, so nothing moves in between), reads, and an
//! operator's resolution (read, decide in Rust, write, re-evaluate the task, commit).
//! The decisions are in `store::dlq`.

use super::tasks::{count_rows, transition_and_commit};
use super::{rollback, run_script, SqliteStore};
use crate::state::StepState;
use crate::store::dlq::{self, DlqEntry, DlqResolveOutcome, ResolveTarget, StaleCandidate};
use crate::store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

fn data<T: serde::de::DeserializeOwned>(r: &SqliteRow) -> Result<T, StoreError> {
    Ok(serde_json::from_str(&r.try_get::<String, _>("data")?)?)
}

pub(super) async fn sweep(store: &SqliteStore, p: DlqSweepParams) -> Result<DlqSweepReport, StoreError> {
    if p.limit == 0 {
        return Ok(DlqSweepReport::default());
    }
    let t = dlq::threshold_binds(&p.thresholds);
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/dlq/stale_candidates_begin.sql"))
            .bind(p.now)
            .bind(t[0])
            .bind(t[1])
            .bind(t[2])
            .bind(t[3])
            .bind(t[4])
            .bind(t[5])
            .bind(t[6])
            .bind(t[7])
            .bind((p.limit as i64) * 4),
    )
    .await?;
    let closed = rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "closed"))
        .count() as u64;
    let found = match rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").is_ok_and(|k| k == "candidate"))
        .map(data::<StaleCandidate>)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(found) => found,
        Err(e) => {
            rollback(&mut conn).await;
            return Err(e);
        }
    };
    let candidates = dlq::pick_candidates(found, p.limit);
    if candidates.is_empty() {
        run_script(&mut conn, store.script("COMMIT;")).await?;
        return Ok(DlqSweepReport {
            closed,
            ..DlqSweepReport::default()
        });
    }
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/dlq/record_commit.sql"))
            .bind(dlq::record_payload(&candidates, p.now).to_string())
            .bind(p.now)
            .bind(&p.processor),
    )
    .await?;
    drop(conn);
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("entry_id"))
        .collect::<Result<_, _>>()?;
    Ok(DlqSweepReport {
        detected: candidates.iter().map(|c| c.reason).collect(),
        recorded: get_many(store, &ids).await?,
        closed,
    })
}

async fn get_many(store: &SqliteStore, ids: &[String]) -> Result<Vec<DlqEntry>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/dlq/get_many.sql"))
        .bind(serde_json::to_string(ids)?)
        .fetch_all(&mut *store.reader().await?)
        .await?;
    rows.iter().map(data).collect()
}

pub(super) async fn get(store: &SqliteStore, entry_id: uuid::Uuid) -> Result<Option<DlqEntry>, StoreError> {
    Ok(get_many(store, &[entry_id.to_string()]).await?.pop())
}

pub(super) async fn list(store: &SqliteStore, p: DlqListParams) -> Result<Vec<DlqEntry>, StoreError> {
    let rows = store
        .query(include_str!("queries/dlq/list.sql"))
        .bind(p.status.map(|s| s.as_str()))
        .bind(p.limit as i64)
        .bind(p.offset as i64)
        .bind(p.reason.map(|r| r.as_str()))
        .bind(p.namespace)
        .fetch_all(&mut *store.reader().await?)
        .await?;
    rows.iter().map(data).collect()
}

pub(super) async fn open_count(store: &SqliteStore) -> Result<u64, StoreError> {
    let row = store
        .query(include_str!("queries/dlq/open_count.sql"))
        .fetch_one(&mut *store.reader().await?)
        .await?;
    Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
}

pub(super) async fn resolve(store: &SqliteStore, p: DlqResolveParams) -> Result<DlqResolveOutcome, StoreError> {
    let step_uuid = p.action.step_uuid();
    let mut conn = store.writer().await?;
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/dlq/resolve_begin.sql"))
            .bind(p.entry_id.to_string())
            .bind(step_uuid.to_string()),
    )
    .await?;
    let read = || -> Result<(Option<DlqEntry>, Option<ResolveTarget>), StoreError> {
        let (mut entry, mut target) = (None, None);
        for r in &rows {
            match r.try_get::<String, _>("kind")?.as_str() {
                "entry" => entry = Some(data::<DlqEntry>(r)?),
                _ => target = Some(data::<ResolveTarget>(r)?),
            }
        }
        Ok((entry, target))
    };
    let (entry, target) = match read() {
        Ok(x) => x,
        Err(e) => {
            rollback(&mut conn).await;
            return Err(e);
        }
    };
    let Some(entry) = entry else {
        rollback(&mut conn).await;
        return Ok(DlqResolveOutcome::NotFound);
    };
    let plan = match dlq::plan_resolution(&entry, target.as_ref(), &p) {
        Ok(plan) => plan,
        Err(outcome) => {
            rollback(&mut conn).await;
            return Ok(*outcome);
        }
    };
    let rows = run_script(
        &mut conn,
        store
            .script(include_str!("queries/dlq/resolve_apply.sql"))
            .bind(step_uuid.to_string())
            .bind(plan.plan.from)
            .bind(plan.plan.final_state())
            .bind(plan.plan.final_event())
            .bind(plan.plan.path_json())
            .bind(plan.metadata.to_string())
            .bind(&p.processor)
            .bind(p.now)
            .bind(plan.result.as_ref().map(|v| v.to_string()))
            .bind(plan.reset_attempts as i64)
            .bind(plan.satisfies as i64)
            .bind(p.entry_id.to_string())
            .bind(p.action.resolution().as_str())
            .bind(p.note.clone())
            .bind(&p.actor),
    )
    .await?;
    let mut applied = (false, false);
    let mut namespaces = Vec::new();
    for r in &rows {
        let kind = r.try_get::<String, _>("kind")?;
        match kind.as_str() {
            "step" | "child" => {
                if kind == "step" {
                    applied.0 = true;
                }
                if r.try_get::<String, _>("state")? == "enqueued" {
                    namespaces.push(r.try_get::<String, _>("namespace")?);
                }
            }
            "resolved" => applied.1 = true,
            _ => {}
        }
    }
    if applied != (true, true) {
        // Under the writer lock nothing can move between the read and the write.
        rollback(&mut conn).await;
        return Err(StoreError::Corrupt {
            table: "dead_letter_entries",
            reason: format!("resolution of {} did not apply its compare-and-swap", p.entry_id),
        });
    }
    let step_state: StepState = plan.plan.final_state().parse().map_err(|e| StoreError::Corrupt {
        table: "steps",
        reason: format!("{e}"),
    })?;
    let events = dlq::resolution_events(&p, step_state);
    let events_stored = match super::domain_events::insert_in_transaction(store, &mut conn, &events, p.now).await {
        Ok(n) => n,
        Err(e) => {
            rollback(&mut conn).await;
            return Err(e);
        }
    };
    let plans = dlq::resume_plans(count_rows(&rows)?, !namespaces.is_empty());
    let changes = transition_and_commit(store, &mut conn, plans, p.now, &p.processor).await?;
    drop(conn);
    if events_stored > 0 {
        store.event_signal.bump();
    }
    namespaces.sort();
    namespaces.dedup();
    let entry = get(store, p.entry_id).await?.ok_or_else(|| StoreError::Corrupt {
        table: "dead_letter_entries",
        reason: format!("resolved entry {} vanished", p.entry_id),
    })?;
    Ok(DlqResolveOutcome::Resolved {
        entry,
        step_state,
        task: changes.into_iter().next(),
        enqueued_namespaces: namespaces,
        events_stored,
    })
}
