//! The SQLite store: the embedded default. One file on one machine, shared by any
//! number of processes on it.
//!
//! How it differs from a server database, and what it does instead:
//! - SQLite has one writer at a time. Each process keeps ONE writer connection and
//!   opens every write transaction with `BEGIN IMMEDIATE`, so a transaction never
//!   upgrades from reader to writer mid-way (the classic `SQLITE_BUSY` deadlock);
//!   other processes wait up to `busy_timeout`. Reads use a separate small pool and,
//!   under WAL, never block the writer.
//! - There is no `FOR UPDATE SKIP LOCKED`: a claim is one
//!   `UPDATE … WHERE step_uuid IN (SELECT … LIMIT n) RETURNING …`, which is atomic
//!   because writers are serialised.
//! - Durability: WAL with `synchronous = NORMAL`. A process crash loses nothing
//!   committed; a power loss or OS crash can lose the last commits (not corrupt the
//!   file). Set `TASKER_SQLITE_SYNCHRONOUS=FULL` for full durability at a cost.
//! - Bulk parameters are one JSON array read with `json_each`.

mod rows;
mod steps;
mod tasks;

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a writer waits for another process's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections per process (writes always use one connection).
pub const READ_POOL_SIZE: u32 = 4;

/// The SQLite implementation of [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    location: String,
    statements: AtomicU64,
    transactions: AtomicU64,
}

/// The file path an SQLite URL names, or None when the URL is not SQLite.
///
/// Accepts `sqlite://PATH`, `sqlite:PATH` and anything without a `scheme://`
/// (a plain path).
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let rest = rest.split('?').next().unwrap_or(rest);
        return Some(PathBuf::from(rest));
    }
    if url.contains("://") {
        return None;
    }
    Some(PathBuf::from(url))
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open { location: location.clone(), reason: e.to_string() };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(open_err(&format!("folder `{}` does not exist", parent.display())));
            }
        }
        let synchronous = match std::env::var("TASKER_SQLITE_SYNCHRONOUS").as_deref() {
            Ok("FULL") | Ok("full") => SqliteSynchronous::Full,
            _ => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_err(&e))?;
        super::migrate::SQLITE.run(&writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => open_err(&inner),
            other => StoreError::Migrate(other.to_string()),
        })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .idle_timeout(None)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| open_err(&e))?;
        Ok(Self { writer, reader, location, statements: AtomicU64::new(0), transactions: AtomicU64::new(0) })
    }

    /// Where the database file is.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every statement is built here, so that it is counted.
    fn query(&self, sql: &'static str) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        sqlx::query(sql)
    }

    /// A write transaction that holds the write lock from its first statement.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn commit(&self, tx: sqlx::Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn transaction_count(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    async fn step_claim_ready_many(&self, p: StepClaimReadyManyParams) -> Result<Vec<ClaimedStep>, StoreError> {
        steps::claim_ready_many(self, p).await
    }

    async fn step_complete_many(&self, p: StepCompleteManyParams) -> Result<CompletionReport, StoreError> {
        steps::complete_many(self, p).await
    }

    async fn step_get(&self, step_uuid: Uuid) -> Result<Option<StepView>, StoreError> {
        let row = self.query(include_str!("queries/step/get.sql")).bind(step_uuid.to_string()).fetch_optional(&self.reader).await?;
        row.map(|r| rows::step_view(&r)).transpose()
    }

    async fn step_lease_expired_list(&self, now: i64, limit: u32) -> Result<Vec<ExpiredClaim>, StoreError> {
        steps::lease_expired_list(self, now, limit).await
    }

    async fn step_lease_extend_many(&self, p: StepLeaseExtendManyParams) -> Result<u64, StoreError> {
        steps::lease_extend_many(self, p).await
    }

    async fn step_release_many(&self, p: StepReleaseManyParams) -> Result<Vec<Uuid>, StoreError> {
        steps::release_many(self, p).await
    }

    async fn step_transitions(&self, step_uuid: Uuid) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = self.query(include_str!("queries/step/transitions.sql")).bind(step_uuid.to_string()).fetch_all(&self.reader).await?;
        rows.iter().map(rows::transition).collect()
    }

    async fn task_create_many(&self, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError> {
        tasks::create_many(self, p).await
    }

    async fn task_evaluate_many(&self, task_uuids: Vec<Uuid>, now: i64, processor: String) -> Result<Vec<TaskChange>, StoreError> {
        let mut tx = self.begin().await?;
        let changes = tasks::evaluate_many(self, &mut tx, &task_uuids, &Default::default(), now, &processor).await?;
        self.commit(tx).await?;
        Ok(changes)
    }

    async fn task_get(&self, task_uuid: Uuid) -> Result<Option<TaskView>, StoreError> {
        tasks::get(self, task_uuid).await
    }

    async fn task_list(&self, p: TaskListParams) -> Result<Vec<TaskSummary>, StoreError> {
        tasks::list(self, p).await
    }

    async fn task_transitions(&self, task_uuid: Uuid) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = self.query(include_str!("queries/task/transitions.sql")).bind(task_uuid.to_string()).fetch_all(&self.reader).await?;
        rows.iter().map(rows::transition).collect()
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Parses a UUID read from a TEXT column.
fn parse_uuid(table: &'static str, s: &str) -> Result<Uuid, StoreError> {
    Uuid::from_str(s).map_err(|e| StoreError::Corrupt { table, reason: format!("bad uuid `{s}`: {e}") })
}
