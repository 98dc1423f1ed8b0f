//! The PostgreSQL store: for many processes on many machines sharing one database.
//!
//! How it differs from SQLite, and why:
//! - Claims lock rows with `FOR UPDATE SKIP LOCKED` in one statement, so any number
//!   of workers claim concurrently without taking each other's rows.
//! - PostgreSQL takes one statement per call when it has parameters, so what SQLite
//!   does as a script of statements is one statement of data-modifying CTEs here
//!   (a claim with its hydration; a creation; a result batch's apply step).
//! - A result batch first locks its tasks' rows (in a fixed order) so that results
//!   for one task apply one transaction at a time and the evaluation sees every
//!   earlier one: BEGIN, lock, apply (+ counts), move tasks (+ eager claim), COMMIT.
//!   A batch with decision or batch outcomes reads their tasks (locking the
//!   deciding steps' rows) and writes the steps they create between the lock and
//!   the apply (`store::expansion`).
//! - Audit rows and NOTIFYs are written by the statements that change state, in
//!   CTEs (ADR 0012): no triggers on `tasks` or `steps`.
//! - Wake-ups across processes: the statement that makes a step claimable NOTIFYs
//!   `tasker_ready` with its namespace; a LISTEN connection turns those into
//!   [`Store::ready_notifications`]. Workers still poll as a fallback (a connection
//!   pooler in transaction mode drops LISTEN). The same connection listens on
//!   `tasker_task_settled` ([`Store::task_settled_notifications`]) for waiters.
//! - Pool: `TASKER_PG_POOL_SIZE` connections per process (default 10). Each engine
//!   uses at most one connection for writes at a time per actor (claims, result
//!   writes, creation, sweeps) plus reads, and one more for LISTEN.

mod dlq;
mod domain_events;
mod held;
mod steps;
mod tasks;
mod templates;

use super::*;
use held::{HeldConnection, HeldConnections};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::{Postgres, Row};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

/// Default connections per process.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// The LISTEN channel the notify trigger uses.
pub const READY_CHANNEL: &str = "tasker_ready";

/// The LISTEN channel on which the task trigger announces settled tasks (migration 0005).
pub const TASK_SETTLED_CHANNEL: &str = "tasker_task_settled";

/// Where the LISTEN connection forwards what it hears.
#[derive(Debug, Clone)]
struct Notifications {
    ready: broadcast::Sender<String>,
    settled: broadcast::Sender<Uuid>,
    /// Bumped when another process commits domain events.
    events: Arc<super::domain_events::EventSignal>,
}

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug)]
pub struct PgStore {
    /// Migrations and the LISTEN connection.
    pool: PgPool,
    /// Every statement runs on one of these ([`held`]).
    held: HeldConnections,
    location: String,
    statements: AtomicU64,
    round_trips: AtomicU64,
    transactions: AtomicU64,
    notifications: Notifications,
    listener: Option<tokio::task::JoinHandle<()>>,
    /// Bumped after each commit that stored domain events (here, or in another
    /// process through LISTEN).
    event_signal: Arc<super::domain_events::EventSignal>,
}

/// True when `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects, migrates (under sqlx's advisory lock, so concurrent starts are safe)
    /// and, when `listen` is set, starts the LISTEN connection for wake-ups.
    pub async fn open(url: &str, listen: bool) -> Result<Self, StoreError> {
        let location = redact(url);
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            location: location.clone(),
            reason: e.to_string(),
        };
        let size = std::env::var("TASKER_PG_POOL_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_POOL_SIZE);
        let options: PgConnectOptions = url.parse().map_err(|e| open_err(&e))?;
        // One pooled connection serves the migrations, then the LISTEN connection;
        // statements run on the held connections.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(held::ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_err(&e))?;
        super::migrate::POSTGRES
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let event_signal = Arc::new(super::domain_events::EventSignal::default());
        let notifications = Notifications {
            ready: broadcast::channel(1024).0,
            settled: broadcast::channel(1024).0,
            events: event_signal.clone(),
        };
        let listener = if listen {
            Some(spawn_listener(pool.clone(), notifications.clone()))
        } else {
            None
        };
        Ok(Self {
            pool,
            held: HeldConnections::new(options, size),
            location,
            statements: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            notifications,
            listener,
            event_signal,
        })
    }

    /// The database, with any password removed.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every statement is built here, so that it is counted.
    fn query(&self, sql: &'static str) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        sqlx::query(sql)
    }

    /// Counts a single write statement run on its own, which PostgreSQL makes one
    /// transaction (a creation, a claim).
    fn autocommitted(&self) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }

    /// A write transaction (BEGIN and COMMIT are round trips too) on a held
    /// connection. Dropping it without [`Self::commit`] closes the connection, which
    /// rolls the transaction back.
    async fn begin(&self) -> Result<HeldConnection, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.held.acquire().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        Ok(conn)
    }

    async fn commit(&self, mut tx: HeldConnection) -> Result<(), StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        sqlx::raw_sql("COMMIT").execute(&mut *tx).await?;
        tx.release();
        self.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A statement of the store, ready to run.
type PgQuery = sqlx::query::Query<'static, Postgres, PgArguments>;

/// Runs a statement on its own on a held connection (PostgreSQL makes it one
/// transaction), releasing the connection once the whole result is read.
trait RunOnStore {
    async fn fetch_all_on(self, store: &PgStore) -> Result<Vec<PgRow>, StoreError>;
    async fn fetch_optional_on(self, store: &PgStore) -> Result<Option<PgRow>, StoreError>;
    async fn fetch_one_on(self, store: &PgStore) -> Result<PgRow, StoreError>;
    async fn execute_on(self, store: &PgStore) -> Result<PgQueryResult, StoreError>;
}

impl RunOnStore for PgQuery {
    async fn fetch_all_on(self, store: &PgStore) -> Result<Vec<PgRow>, StoreError> {
        let mut conn = store.held.acquire().await?;
        let rows = self.fetch_all(&mut *conn).await?;
        conn.release();
        Ok(rows)
    }

    async fn fetch_optional_on(self, store: &PgStore) -> Result<Option<PgRow>, StoreError> {
        let mut conn = store.held.acquire().await?;
        let row = self.fetch_optional(&mut *conn).await?;
        conn.release();
        Ok(row)
    }

    async fn fetch_one_on(self, store: &PgStore) -> Result<PgRow, StoreError> {
        let mut conn = store.held.acquire().await?;
        let row = self.fetch_one(&mut *conn).await?;
        conn.release();
        Ok(row)
    }

    async fn execute_on(self, store: &PgStore) -> Result<PgQueryResult, StoreError> {
        let mut conn = store.held.acquire().await?;
        let done = self.execute(&mut *conn).await?;
        conn.release();
        Ok(done)
    }
}

/// LISTEN on [`READY_CHANNEL`], [`TASK_SETTLED_CHANNEL`] and the domain events
/// channel and forward what arrives; reconnects with backoff.
fn spawn_listener(pool: PgPool, to: Notifications) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; polling covers wake-ups meanwhile");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            if let Err(e) = listener
                .listen_all([READY_CHANNEL, TASK_SETTLED_CHANNEL, domain_events::EVENTS_CHANNEL])
                .await
            {
                tracing::warn!(error = %e, "LISTEN failed; polling covers wake-ups meanwhile");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            loop {
                match listener.recv().await {
                    Ok(n) if n.channel() == TASK_SETTLED_CHANNEL => match n.payload().parse::<Uuid>() {
                        Ok(task_uuid) => {
                            let _ = to.settled.send(task_uuid);
                        }
                        Err(e) => {
                            tracing::warn!(payload = n.payload(), error = %e, "ignoring a malformed task notification")
                        }
                    },
                    Ok(n) if n.channel() == domain_events::EVENTS_CHANNEL => to.events.bump(),
                    Ok(n) => {
                        let _ = to.ready.send(n.payload().to_string());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A `count` row's JSON, as the finalizer's input.
fn count_row(r: &PgRow) -> Result<batch::CountRow, StoreError> {
    #[derive(serde::Deserialize)]
    struct CountJson {
        task_uuid: Uuid,
        task_state: String,
        hold_failed: bool,
        step_state: Option<String>,
        n: i64,
    }
    let c: CountJson = serde_json::from_value(data(r)?)?;
    let corrupt = |table: &'static str, e: &dyn std::fmt::Display| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    };
    Ok(batch::CountRow {
        task_uuid: c.task_uuid,
        task_state: c
            .task_state
            .parse::<crate::state::TaskState>()
            .map_err(|e| corrupt("tasks", &e))?,
        hold_failed: c.hold_failed,
        step_state: c
            .step_state
            .map(|s| s.parse::<crate::state::StepState>().map_err(|e| corrupt("steps", &e)))
            .transpose()?,
        n: c.n as u32,
    })
}

/// The JSON `data` column of a `kind`/`data` row.
fn data(r: &PgRow) -> Result<serde_json::Value, StoreError> {
    Ok(r.try_get::<serde_json::Value, _>("data")?)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn transaction_count(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    fn round_trip_count(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn domain_event_insert_many(
        &self,
        events: Vec<crate::events::domain::DomainEvent>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        domain_events::insert_many(self, events, now).await
    }

    async fn domain_event_poll(
        &self,
        p: DomainEventPollParams,
    ) -> Result<Vec<crate::events::domain::StoredDomainEvent>, StoreError> {
        domain_events::poll(self, p).await
    }

    async fn domain_event_ack(&self, consumer: &str, up_to_sequence: i64, now: i64) -> Result<i64, StoreError> {
        domain_events::ack(self, consumer, up_to_sequence, now).await
    }

    async fn domain_event_prune(&self, p: DomainEventPruneParams) -> Result<u64, StoreError> {
        domain_events::prune(self, p).await
    }

    fn domain_event_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.event_signal.subscribe()
    }

    async fn step_claim_ready_many(&self, p: StepClaimReadyManyParams) -> Result<Vec<ClaimedStep>, StoreError> {
        steps::claim_ready_many(self, p).await
    }

    async fn step_complete_many(&self, p: StepCompleteManyParams) -> Result<CompletionReport, StoreError> {
        steps::complete_many(self, p).await
    }

    async fn step_get(&self, step_uuid: Uuid) -> Result<Option<StepView>, StoreError> {
        let row = self
            .query(include_str!("queries/step/get.sql"))
            .bind(step_uuid)
            .fetch_optional_on(self)
            .await?;
        row.map(|r| steps::step_view(&r)).transpose()
    }

    async fn step_lease_expired_list(&self, now: i64, limit: u32) -> Result<Vec<ExpiredClaim>, StoreError> {
        steps::lease_expired_list(self, now, limit).await
    }

    async fn step_lease_extend_many(&self, p: StepLeaseExtendManyParams) -> Result<u64, StoreError> {
        if p.claims.is_empty() {
            return Ok(0);
        }
        let done = self
            .query(include_str!("queries/step/lease_extend_many.sql"))
            .bind(batch::claims_payload(&p.claims))
            .bind(p.lease_expires_at)
            .bind(p.now)
            .execute_on(self)
            .await?;
        Ok(done.rows_affected())
    }

    async fn step_heartbeat(&self, p: StepHeartbeatParams) -> Result<Option<crate::clock::EpochMillis>, StoreError> {
        let row = self
            .query(include_str!("queries/step/heartbeat.sql"))
            .bind(p.step_uuid)
            .bind(p.claim_seq)
            .bind(p.lease_expires_at)
            .bind(p.deadline_at)
            .bind(p.checkpoint)
            .bind(p.now)
            .fetch_optional_on(self)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("deadline_at")).transpose()?)
    }

    async fn step_release_many(&self, p: StepReleaseManyParams) -> Result<Vec<Uuid>, StoreError> {
        if p.claims.is_empty() {
            return Ok(vec![]);
        }
        let (event, metadata) = batch::release_audit(p.reason);
        let rows = self
            .query(include_str!("queries/step/release_many.sql"))
            .bind(batch::claims_payload(&p.claims))
            .bind(p.now)
            .bind(&p.processor)
            .bind(event)
            .bind(metadata)
            .fetch_all_on(self)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<Uuid, _>("step_uuid")?)).collect()
    }

    async fn step_transitions(&self, step_uuid: Uuid) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = self
            .query(include_str!("queries/step/transitions.sql"))
            .bind(step_uuid)
            .fetch_all_on(self)
            .await?;
        rows.iter().map(transition).collect()
    }

    async fn step_ready_counts(&self) -> Result<Vec<ReadyCount>, StoreError> {
        let rows = self
            .query(include_str!("queries/step/ready_counts.sql"))
            .fetch_all_on(self)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReadyCount {
                    namespace: r.try_get("namespace")?,
                    ready: r.try_get::<i64, _>("ready")?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn task_cancel_many(&self, p: TaskCancelManyParams) -> Result<Vec<TaskCancelOutcome>, StoreError> {
        tasks::cancel_many(self, p).await
    }

    async fn task_create_many(&self, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError> {
        tasks::create_many(self, p).await
    }

    async fn task_evaluate_many(
        &self,
        task_uuids: Vec<Uuid>,
        now: i64,
        processor: String,
    ) -> Result<Vec<TaskChange>, StoreError> {
        tasks::evaluate_many(self, task_uuids, now, &processor).await
    }

    async fn task_get(&self, task_uuid: Uuid) -> Result<Option<TaskView>, StoreError> {
        tasks::get(self, task_uuid).await
    }

    async fn task_list(&self, p: TaskListParams) -> Result<Vec<TaskSummary>, StoreError> {
        tasks::list(self, p).await
    }

    async fn task_transitions(&self, task_uuid: Uuid) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = self
            .query(include_str!("queries/task/transitions.sql"))
            .bind(task_uuid)
            .fetch_all_on(self)
            .await?;
        rows.iter().map(transition).collect()
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let row = self
            .query(include_str!("queries/schema/status.sql"))
            .fetch_one_on(self)
            .await?;
        Ok(SchemaStatus {
            applied: row.try_get("applied")?,
            expected: migrate::POSTGRES.iter().map(|m| m.version).max().unwrap_or(0),
        })
    }

    async fn template_register_many(&self, templates: Vec<TemplateRecord>, now: i64) -> Result<(), StoreError> {
        templates::register_many(self, templates, now).await
    }

    async fn template_find(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        templates::find(self, namespace, name, version).await
    }

    async fn dlq_sweep(&self, p: DlqSweepParams) -> Result<DlqSweepReport, StoreError> {
        dlq::sweep(self, p).await
    }

    async fn dlq_list(&self, p: DlqListParams) -> Result<Vec<DlqEntry>, StoreError> {
        dlq::list(self, p).await
    }

    async fn dlq_get(&self, entry_id: Uuid) -> Result<Option<DlqEntry>, StoreError> {
        dlq::get(self, entry_id).await
    }

    async fn dlq_resolve(&self, p: DlqResolveParams) -> Result<DlqResolveOutcome, StoreError> {
        dlq::resolve(self, p).await
    }

    async fn dlq_open_count(&self) -> Result<u64, StoreError> {
        dlq::open_count(self).await
    }

    async fn close(&self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
        self.held.close().await;
        self.pool.close().await;
    }

    fn ready_notifications(&self) -> Option<broadcast::Receiver<String>> {
        self.listener.as_ref().map(|_| self.notifications.ready.subscribe())
    }

    fn task_settled_notifications(&self) -> Option<broadcast::Receiver<Uuid>> {
        self.listener.as_ref().map(|_| self.notifications.settled.subscribe())
    }
}

fn transition(r: &PgRow) -> Result<TransitionRecord, StoreError> {
    Ok(TransitionRecord {
        transition_id: r.try_get("transition_id")?,
        from_state: r.try_get("from_state")?,
        to_state: r.try_get("to_state")?,
        event: r.try_get("event")?,
        metadata: r.try_get("metadata")?,
        processor: r.try_get("processor")?,
        created_at: r.try_get("created_at")?,
        most_recent: r.try_get("most_recent")?,
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
