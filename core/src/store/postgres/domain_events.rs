//! Durable domain events on PostgreSQL: the insert that rides in a result batch's
//! transaction, stand-alone inserts, polls and acknowledgements. Every insert first
//! takes a transaction-level advisory lock (`queries/domain_event/lock.sql`), held
//! until commit, so sequences commit in order: a consumer that has read sequence N
//! never finds a row below N committed later. Only transactions that write events
//! take it, just before they commit.

use super::{HeldConnection, PgStore, RunOnStore};
use crate::events::domain::{DomainEvent, StoredDomainEvent};
use crate::store::domain_events::{self, DomainEventPollParams, DomainEventPruneParams};
use crate::store::{StepCompletion, StoreError};
use sqlx::Row;

/// LISTEN channel of the insert trigger (migration 0004).
pub const EVENTS_CHANNEL: &str = "tasker_domain_events";

/// Inside a result batch's transaction, just before its commit: writes the events
/// of the results applied with `token`. Answers how many were written.
pub(super) async fn insert_with_results(
    store: &PgStore,
    tx: &mut HeldConnection,
    completions: &[&StepCompletion],
    token: uuid::Uuid,
    now: i64,
) -> Result<u64, StoreError> {
    let Some(payload) = domain_events::batch_payload(completions) else {
        return Ok(0);
    };
    store
        .query(include_str!("queries/domain_event/lock.sql"))
        .execute(&mut **tx)
        .await?;
    let rows = store
        .query(include_str!("queries/domain_event/insert_with_results.sql"))
        .bind(payload)
        .bind(token)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.len() as u64)
}

pub(super) async fn insert_many(store: &PgStore, events: Vec<DomainEvent>, now: i64) -> Result<Vec<i64>, StoreError> {
    if events.is_empty() {
        return Ok(vec![]);
    }
    let mut tx = store.begin().await?;
    let rows = insert_rows(store, &mut tx, &events, now).await?;
    store.commit(tx).await?;
    if !rows.is_empty() {
        store.event_signal.bump();
    }
    rows.iter().map(|r| Ok(r.try_get::<i64, _>("sequence")?)).collect()
}

pub(super) async fn poll(store: &PgStore, p: DomainEventPollParams) -> Result<Vec<StoredDomainEvent>, StoreError> {
    if p.limit == 0 {
        return Ok(vec![]);
    }
    let rows = store
        .query(include_str!("queries/domain_event/poll.sql"))
        .bind(&p.consumer)
        .bind(p.after)
        .bind(p.limit as i64)
        .bind(p.name_pattern.as_deref().map(domain_events::like_pattern))
        .fetch_all_on(store)
        .await?;
    rows.iter()
        .map(|r| domain_events::stored_from_json(r.try_get::<serde_json::Value, _>("data")?))
        .collect()
}

pub(super) async fn ack(store: &PgStore, consumer: &str, up_to: i64, now: i64) -> Result<i64, StoreError> {
    let row = store
        .query(include_str!("queries/domain_event/ack.sql"))
        .bind(consumer)
        .bind(up_to)
        .bind(now)
        .fetch_one_on(store)
        .await?;
    store.autocommitted();
    Ok(row.try_get("acked_sequence")?)
}

pub(super) async fn prune(store: &PgStore, p: DomainEventPruneParams) -> Result<u64, StoreError> {
    if p.limit == 0 {
        return Ok(0);
    }
    let rows = store
        .query(include_str!("queries/domain_event/prune.sql"))
        .bind(p.stored_before)
        .bind(p.acknowledged_only)
        .bind(p.limit as i64)
        .fetch_all_on(store)
        .await?;
    store.autocommitted();
    Ok(rows.len() as u64)
}

/// Inside an open transaction: writes `events` after the ordering lock; answers the
/// rows (sequences) of those not stored before.
async fn insert_rows(
    store: &PgStore,
    tx: &mut HeldConnection,
    events: &[DomainEvent],
    now: i64,
) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
    store
        .query(include_str!("queries/domain_event/lock.sql"))
        .execute(&mut **tx)
        .await?;
    Ok(store
        .query(include_str!("queries/domain_event/insert_many.sql"))
        .bind(domain_events::immediate_payload(events))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?)
}

/// Inside an open transaction (a DLQ resolution): writes `events`; answers how many
/// were new.
pub(super) async fn insert_in_transaction(
    store: &PgStore,
    tx: &mut HeldConnection,
    events: &[DomainEvent],
    now: i64,
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    Ok(insert_rows(store, tx, events, now).await?.len() as u64)
}
