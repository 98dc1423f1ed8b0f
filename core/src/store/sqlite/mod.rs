//! The SQLite store: the embedded default. One file on one machine, shared by any
//! number of processes on it.
//!
//! How it differs from a server database, and what it does instead:
//! - SQLite has one writer at a time. Each process keeps ONE writer connection and
//!   opens every write transaction with `BEGIN IMMEDIATE`, so a transaction never
//!   upgrades from reader to writer mid-way (the classic `SQLITE_BUSY` deadlock);
//!   other processes wait up to `busy_timeout`. Reads use three more connections and,
//!   under WAL, never block the writer.
//! - There is no `FOR UPDATE SKIP LOCKED`: a claim is one
//!   `UPDATE … WHERE step_uuid IN (SELECT … LIMIT n) RETURNING …`, which is atomic
//!   because writers are serialised.
//! - Round trips, not statements, are what cost: every call crosses to sqlx's
//!   connection thread and back. So each hot transaction is one *script* (several
//!   statements, `BEGIN IMMEDIATE … COMMIT`, one round trip): a claim with its
//!   hydration is one, a task creation one, a result batch two (the TaskFinalizer's
//!   rule runs in Rust between them; three when it holds decision or batch
//!   outcomes, whose expansion is planned in Rust after a first, reading script). Later statements of a script find the rows
//!   earlier ones touched through per-call tokens (`claim_token`, `result_token`).
//! - A quirk of sqlx's SQLite driver shapes those scripts: it binds a parameter
//!   number a statement does not use *positionally*, continuing from the previous
//!   statement, which shifts or drops later values. So every statement names every
//!   parameter from ?1 to its highest, if need be through a leading
//!   `WITH unused_parameters AS (SELECT …)`; a test checks each query file.
//! - Durability: WAL with `synchronous = NORMAL`. A process crash loses nothing
//!   committed; a power loss or OS crash can lose the last commits (not corrupt the
//!   file). Set `TASKER_SQLITE_SYNCHRONOUS=FULL` for full durability at a cost.
//! - Bulk parameters are one JSON array read with `json_each`.
//! - SQLite has no migration lock: processes opening a new file at once may race
//!   to apply the same migration. The loser's migration transaction fails and rolls
//!   back, and it runs the migrations again (see `migrate`).

mod dlq;
mod domain_events;
mod rows;
mod steps;
mod tasks;
mod templates;

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Sqlite};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// How long a writer waits for another process's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections per process (writes always use one connection).
pub const READ_CONNECTIONS: usize = 3;

/// The SQLite implementation of [`Store`].
///
/// Connections are held directly behind async mutexes rather than in sqlx's pool:
/// there is exactly one writer anyway, and a pool checkout (with its ping on
/// release) costs more than the statements themselves on the hot path.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Option<SqliteConnection>>,
    readers: Vec<Mutex<Option<SqliteConnection>>>,
    next_reader: AtomicUsize,
    location: String,
    statements: AtomicU64,
    round_trips: AtomicU64,
    transactions: AtomicU64,
    /// Bumped after each commit that stored domain events.
    pub(super) event_signal: super::domain_events::EventSignal,
}

/// A checked-out connection (the store's writer or one of its readers).
pub(super) struct Conn<'a>(MutexGuard<'a, Option<SqliteConnection>>);

impl std::ops::Deref for Conn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.0.as_ref().expect("checked at checkout")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0.as_mut().expect("checked at checkout")
    }
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
    if url.contains("://") || url.starts_with("postgres") {
        return None;
    }
    Some(PathBuf::from(url))
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            location: location.clone(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(open_err(&format!("folder `{}` does not exist", parent.display())));
            }
        }
        let synchronous = match std::env::var("TASKER_SQLITE_SYNCHRONOUS").as_deref() {
            Ok("FULL") | Ok("full") => SqliteSynchronous::Full,
            Ok("OFF") => SqliteSynchronous::Off,
            _ => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-32768");
        // Several processes opening a new file at once can meet SQLite answering
        // "busy" without waiting for `busy_timeout` (switching the new file to WAL,
        // a read-only connection finding the WAL index not built yet): such an open
        // is tried again, from the start, until `busy_timeout` has passed.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let (writer, readers) = loop {
            match connect_and_migrate(&options).await {
                Ok(opened) => break opened,
                Err(OpenFailure::Busy(e)) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, location = %location, "database busy while opening; trying again");
                    let pause = rand::random_range(5..25);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(OpenFailure::Busy(e)) | Err(OpenFailure::Connect(e)) => return Err(open_err(&e)),
                Err(OpenFailure::Migrate(e)) => return Err(StoreError::Migrate(e.to_string())),
            }
        };
        let readers = readers.into_iter().map(|r| Mutex::new(Some(r))).collect();
        Ok(Self {
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
            location,
            statements: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            event_signal: Default::default(),
        })
    }

    /// Where the database file is.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every single statement is built here, so that it is counted.
    fn query(&self, sql: &'static str) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        sqlx::query(sql)
    }

    /// A script: several statements (often a whole `BEGIN IMMEDIATE … COMMIT`
    /// transaction) sent in one round trip. Counted by its statements, BEGIN and
    /// COMMIT excluded.
    fn script(&self, sql: &'static str) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.statements.fetch_add(statements_in(sql), Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        // Write transactions end in a script with COMMIT; read snapshots open with a plain BEGIN.
        if sql.contains("COMMIT;") && !sql.contains("BEGIN;") {
            self.transactions.fetch_add(1, Ordering::Relaxed);
        }
        sqlx::query(sql)
    }

    /// The writer connection (one per process).
    pub(super) async fn writer(&self) -> Result<Conn<'_>, StoreError> {
        let guard = self.writer.lock().await;
        if guard.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(Conn(guard))
    }

    /// A read connection: a free one if any, else the next in turn.
    pub(super) async fn reader(&self) -> Result<Conn<'_>, StoreError> {
        let guard = match self.readers.iter().find_map(|r| r.try_lock().ok()) {
            Some(g) => g,
            None => {
                let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                self.readers[i].lock().await
            }
        };
        if guard.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(Conn(guard))
    }
}

/// Runs a script on the writer. A failure can leave the connection inside the
/// script's transaction, so it is rolled back before the error is returned.
pub(super) async fn run_script(
    conn: &mut SqliteConnection,
    query: sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            rollback(conn).await;
            Err(e.into())
        }
    }
}

/// Rolls back the transaction a script left open (after it failed, or when Rust
/// between two scripts of one transaction gives up).
pub(super) async fn rollback(conn: &mut SqliteConnection) {
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
}

/// Applies the migrations this file lacks, safely when several processes open a new
/// file at once (the polyglot demo's workers do). sqlx applies each migration in a
/// transaction of its own, but SQLite has no migration lock: two openers can both
/// find a migration missing, and the second one's fails ("table … already exists")
/// once the first has committed it, and rolls back. So a failed run is run again
/// while it made progress (more migrations applied than before it, by anyone); it
/// then finds them applied. A run that fails without progress (a broken migration,
/// the file locked past `busy_timeout`) returns its error. At most one retry per
/// migration.
async fn migrate(conn: &mut SqliteConnection) -> Result<(), sqlx::migrate::MigrateError> {
    let mut applied = applied_migrations(conn).await;
    loop {
        let error = match migrate::SQLITE.run(&mut *conn).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let now = applied_migrations(conn).await;
        if now <= applied {
            return Err(error);
        }
        tracing::debug!(error = %error, applied = now, "another opener applied migrations meanwhile; running them again");
        applied = now;
    }
}

/// Why opening a file failed.
enum OpenFailure {
    /// SQLite answered busy or locked: another opener holds the file for a moment.
    Busy(sqlx::Error),
    /// Any other connection or statement error.
    Connect(sqlx::Error),
    /// A migration could not be applied for another reason than a statement error.
    Migrate(sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for OpenFailure {
    fn from(e: sqlx::Error) -> Self {
        let busy = match &e {
            // Primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), any extended code.
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
            _ => false,
        };
        if busy {
            Self::Busy(e)
        } else {
            Self::Connect(e)
        }
    }
}

/// The writer (migrated) and the read connections of one open.
async fn connect_and_migrate(
    options: &SqliteConnectOptions,
) -> Result<(SqliteConnection, Vec<SqliteConnection>), OpenFailure> {
    let mut writer = options.connect().await?;
    migrate(&mut writer).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => OpenFailure::from(inner),
        other => OpenFailure::Migrate(other),
    })?;
    let mut readers = Vec::with_capacity(READ_CONNECTIONS);
    for _ in 0..READ_CONNECTIONS {
        readers.push(options.clone().read_only(true).connect().await?);
    }
    Ok((writer, readers))
}

/// sqlx's bookkeeping table (its default name, which `sqlx::migrate!` keeps).
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How many migrations the file has recorded (0 before the first run created the
/// bookkeeping table, or when it cannot be read).
async fn applied_migrations(conn: &mut SqliteConnection) -> usize {
    use sqlx::migrate::Migrate;
    conn.list_applied_migrations(MIGRATIONS_TABLE)
        .await
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Statements in a script, BEGIN and COMMIT excluded (comments ignored).
fn statements_in(sql: &str) -> u64 {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.starts_with("BEGIN") && !s.starts_with("COMMIT"))
        .count() as u64
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
            .bind(step_uuid.to_string())
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(|r| rows::step_view(&r)).transpose()
    }

    async fn step_lease_expired_list(&self, now: i64, limit: u32) -> Result<Vec<ExpiredClaim>, StoreError> {
        steps::lease_expired_list(self, now, limit).await
    }

    async fn step_lease_extend_many(&self, p: StepLeaseExtendManyParams) -> Result<u64, StoreError> {
        steps::lease_extend_many(self, p).await
    }

    async fn step_heartbeat(&self, p: StepHeartbeatParams) -> Result<Option<crate::clock::EpochMillis>, StoreError> {
        let row = self
            .query(include_str!("queries/step/heartbeat.sql"))
            .bind(p.step_uuid.to_string())
            .bind(p.claim_seq)
            .bind(p.lease_expires_at)
            .bind(p.deadline_at)
            .bind(p.checkpoint.map(|c| c.to_string()))
            .bind(p.now)
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        Ok(row
            .map(|r| sqlx::Row::try_get::<i64, _>(&r, "deadline_at"))
            .transpose()?)
    }

    async fn step_release_many(&self, p: StepReleaseManyParams) -> Result<Vec<Uuid>, StoreError> {
        steps::release_many(self, p).await
    }

    async fn step_transitions(&self, step_uuid: Uuid) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = self
            .query(include_str!("queries/step/transitions.sql"))
            .bind(step_uuid.to_string())
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(rows::transition).collect()
    }

    async fn step_ready_counts(&self) -> Result<Vec<ReadyCount>, StoreError> {
        let rows = self
            .query(include_str!("queries/step/ready_counts.sql"))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReadyCount {
                    namespace: sqlx::Row::try_get(r, "namespace")?,
                    ready: sqlx::Row::try_get::<i64, _>(r, "ready")?.max(0) as u64,
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
            .bind(task_uuid.to_string())
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(rows::transition).collect()
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let row = self
            .query(include_str!("queries/schema/status.sql"))
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok(SchemaStatus {
            applied: sqlx::Row::try_get(&row, "applied")?,
            expected: migrate::SQLITE.iter().map(|m| m.version).max().unwrap_or(0),
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
        for reader in &self.readers {
            if let Some(conn) = reader.lock().await.take() {
                let _ = conn.close().await;
            }
        }
        if let Some(conn) = self.writer.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

/// Parses a UUID read from a TEXT column.
fn parse_uuid(table: &'static str, s: &str) -> Result<Uuid, StoreError> {
    Uuid::from_str(s).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("bad uuid `{s}`: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::statements_in;
    use std::path::Path;

    /// Every query file, with its statements (comments dropped).
    fn query_files() -> Vec<(String, Vec<String>)> {
        fn walk(dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "sql") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
                    let statements = code
                        .join("\n")
                        .split(';')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    out.push((path.display().to_string(), statements));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sqlite/queries"),
            &mut out,
        );
        assert!(out.len() >= 10, "query files not found");
        out
    }

    #[test]
    fn every_statement_names_each_parameter_up_to_its_highest() {
        for (file, statements) in query_files() {
            for stmt in statements {
                let mut numbers: Vec<usize> = stmt
                    .match_indices('?')
                    .filter_map(|(i, _)| {
                        let digits: String = stmt[i + 1..].chars().take_while(|c| c.is_ascii_digit()).collect();
                        digits.parse().ok()
                    })
                    .collect();
                numbers.sort();
                numbers.dedup();
                let expected: Vec<usize> = (1..=numbers.last().copied().unwrap_or(0)).collect();
                assert_eq!(
                    numbers, expected,
                    "{file}: a statement skips a parameter number:\n{stmt}"
                );
            }
        }
    }

    #[test]
    fn every_state_change_also_sets_its_audit_columns() {
        for (file, statements) in query_files() {
            for stmt in statements
                .iter()
                .filter(|s| s.contains("UPDATE steps") || s.contains("UPDATE tasks"))
            {
                if stmt.contains("SET state =") || stmt.contains("    state =") {
                    for column in [
                        "transition_event =",
                        "transition_path =",
                        "transition_metadata =",
                        "transition_processor =",
                    ] {
                        assert!(
                            stmt.contains(column),
                            "{file}: a state change does not set {column}\n{stmt}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn scripts_are_counted_by_their_statements() {
        assert_eq!(
            statements_in("-- a; b\nBEGIN IMMEDIATE;\nSELECT 1;\nUPDATE t SET a = 1;\nCOMMIT;\n"),
            2
        );
        assert_eq!(statements_in("COMMIT;"), 0);
    }
}
