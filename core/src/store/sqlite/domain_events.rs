//! Durable domain events on SQLite: the insert that rides in a result batch's
//! transaction, stand-alone inserts, polls and acknowledgements. Sequences follow
//! commit order for free: SQLite has one writer at a time.

use super::{run_script, SqliteConnection, SqliteStore};
use crate::events::domain::{DomainEvent, StoredDomainEvent};
use crate::store::domain_events::{self, DomainEventPollParams, DomainEventPruneParams};
use crate::store::{StepCompletion, StoreError};
use sqlx::Row;

/// Inside a result batch's open transaction, after its apply statement: writes the
/// events of the applied results (token `token`). A failure rolls the whole
/// transaction back. Answers how many were written.
pub(super) async fn insert_with_results(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    completions: &[&StepCompletion],
    token: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let Some(payload) = domain_events::batch_payload(completions) else {
        return Ok(0);
    };
    let rows = run_script(
        conn,
        store
            .query(include_str!("queries/domain_event/insert_with_results.sql"))
            .bind(payload)
            .bind(token)
            .bind(now),
    )
    .await?;
    Ok(rows.len() as u64)
}

pub(super) async fn insert_many(
    store: &SqliteStore,
    events: Vec<DomainEvent>,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    if events.is_empty() {
        return Ok(vec![]);
    }
    let rows = insert_rows(store, &mut *store.writer().await?, &events, now).await?;
    if !rows.is_empty() {
        store.event_signal.bump();
    }
    rows.iter().map(|r| Ok(r.try_get::<i64, _>("sequence")?)).collect()
}

pub(super) async fn poll(store: &SqliteStore, p: DomainEventPollParams) -> Result<Vec<StoredDomainEvent>, StoreError> {
    if p.limit == 0 {
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/domain_event/poll.sql"))
        .bind(&p.consumer)
        .bind(p.after)
        .bind(p.limit as i64)
        .bind(p.name_pattern.as_deref().map(domain_events::sqlite_glob))
        .fetch_all(&mut *store.reader().await?)
        .await?;
    rows.iter()
        .map(|r| domain_events::stored_from_json(serde_json::from_str(&r.try_get::<String, _>("data")?)?))
        .collect()
}

pub(super) async fn ack(store: &SqliteStore, consumer: &str, up_to: i64, now: i64) -> Result<i64, StoreError> {
    let row = store
        .query(include_str!("queries/domain_event/ack.sql"))
        .bind(consumer)
        .bind(up_to)
        .bind(now)
        .fetch_one(&mut *store.writer().await?)
        .await?;
    Ok(row.try_get("acked_sequence")?)
}

pub(super) async fn prune(store: &SqliteStore, p: DomainEventPruneParams) -> Result<u64, StoreError> {
    if p.limit == 0 {
        return Ok(0);
    }
    let rows = store
        .query(include_str!("queries/domain_event/prune.sql"))
        .bind(p.stored_before)
        .bind(p.acknowledged_only)
        .bind(p.limit as i64)
        .fetch_all(&mut *store.writer().await?)
        .await?;
    Ok(rows.len() as u64)
}

/// Writes `events` on `conn` (on its own, or inside the transaction open there);
/// answers the rows (sequences) of those not stored before.
async fn insert_rows(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    events: &[DomainEvent],
    now: i64,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
    Ok(store
        .query(include_str!("queries/domain_event/insert_many.sql"))
        .bind(domain_events::immediate_payload(events))
        .bind(now)
        .fetch_all(&mut *conn)
        .await?)
}

/// Inside the transaction open on `conn` (a DLQ resolution): writes `events`;
/// answers how many were new.
pub(super) async fn insert_in_transaction(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    events: &[DomainEvent],
    now: i64,
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    Ok(insert_rows(store, conn, events, now).await?.len() as u64)
}
