//! The store: the only door to the database. Every SQL statement of the project
//! lives under this module, one `.sql` file per query in `<backend>/queries/`.
//!
//! Rules every backend follows:
//! - A state change is a compare-and-swap on the row's `state` column, checked by
//!   the state machine first ([`plan::TransitionPlan`]); its audit rows are written
//!   in the same statement (by triggers on SQLite, by the statement itself on
//!   PostgreSQL: ADR 0012). A writer whose expected state is stale
//!   changes nothing and is told so (a rejected result, a missing row in a report).
//! - Methods are batch-first (`_many`); bulk parameters travel as one JSON array.
//! - Times come from the caller (a `Clock`), never from the database.
//! - Every statement goes through one counting executor ([`Store::statement_count`]).
//!
//! Methods are named `<noun>_<verb>[_many]` and sorted by noun.

pub mod batch;
pub mod cancel;
pub mod dlq;
pub mod domain_events;
pub mod error;
pub mod expansion;
pub mod migrate;
pub mod params;
pub mod plan;
pub mod postgres;
pub mod sqlite;
pub mod templates;

pub use dlq::{
    DlqAction, DlqEntry, DlqListParams, DlqReason, DlqResolution, DlqResolveOutcome, DlqResolveParams, DlqStatus,
    DlqSweepParams, DlqSweepReport, StaleThresholds,
};
pub use domain_events::{DomainEventPollParams, DomainEventPruneParams, EventGate, PendingDomainEvent};
pub use error::StoreError;
pub use params::*;

use crate::clock::EpochMillis;
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The persistence seam. Implementations: [`sqlite::SqliteStore`].
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Statements executed so far (BEGIN/COMMIT excluded).
    fn statement_count(&self) -> u64;

    /// Transactions committed so far.
    fn transaction_count(&self) -> u64;

    /// Round trips to the database so far (a script of several statements is one).
    fn round_trip_count(&self) -> u64;

    /// Claims up to `limit` ready steps of one namespace in one statement, moving them
    /// to `in_progress` with a lease, and returns them hydrated with their task
    /// context and dependency results.
    async fn step_claim_ready_many(&self, p: StepClaimReadyManyParams) -> Result<Vec<ClaimedStep>, StoreError>;

    /// Applies results in one transaction: step transitions (compare-and-swap on the
    /// claim), successors that became ready are enqueued, and each touched task is
    /// evaluated and moved on (finalized when its last step ended).
    async fn step_complete_many(&self, p: StepCompleteManyParams) -> Result<CompletionReport, StoreError>;

    /// Writes durable domain events on their own, in one transaction (explicit
    /// publishes that name no held step); answers their sequences. An event whose
    /// `event_id` is already stored is skipped.
    async fn domain_event_insert_many(
        &self,
        events: Vec<crate::events::domain::DomainEvent>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError>;

    /// Durable events for a consumer, oldest first: those after `p.after`, or,
    /// without it, those after the consumer's acknowledged sequence (so events not
    /// acknowledged are delivered again: at least once).
    async fn domain_event_poll(
        &self,
        p: DomainEventPollParams,
    ) -> Result<Vec<crate::events::domain::StoredDomainEvent>, StoreError>;

    /// Records that `consumer` has handled every event up to `up_to_sequence`
    /// (its offset never moves back); answers the stored offset.
    async fn domain_event_ack(&self, consumer: &str, up_to_sequence: i64, now: i64) -> Result<i64, StoreError>;

    /// Deletes durable events (retention): those stored before `p.stored_before`
    /// and, with `p.acknowledged_only`, acknowledged by every known consumer; oldest
    /// first, at most `p.limit`. Answers how many were deleted. Sequences are never
    /// reused, so consumers' offsets stay valid.
    async fn domain_event_prune(&self, p: DomainEventPruneParams) -> Result<u64, StoreError>;

    /// Changes whenever this process commits durable events, and, on PostgreSQL
    /// with LISTEN, when any process does (subscribers wait on it; they poll as a
    /// fallback).
    fn domain_event_wakeups(&self) -> tokio::sync::watch::Receiver<u64>;

    /// A step with its current state.
    async fn step_get(&self, step_uuid: Uuid) -> Result<Option<StepView>, StoreError>;

    /// Claims whose lease ended before `now`.
    async fn step_lease_expired_list(&self, now: i64, limit: u32) -> Result<Vec<ExpiredClaim>, StoreError>;

    /// Moves the leases of still-held claims forward; returns how many were extended.
    async fn step_lease_extend_many(&self, p: StepLeaseExtendManyParams) -> Result<u64, StoreError>;

    /// Extends a held claim's lease, moves its deadline and saves a checkpoint;
    /// returns the deadline, or None when the claim is no longer held.
    async fn step_heartbeat(&self, p: StepHeartbeatParams) -> Result<Option<EpochMillis>, StoreError>;

    /// Hands claimed steps back to the queue without burning an attempt.
    async fn step_release_many(&self, p: StepReleaseManyParams) -> Result<Vec<Uuid>, StoreError>;

    /// The audit rows of a step, oldest first.
    async fn step_transitions(&self, step_uuid: Uuid) -> Result<Vec<crate::store::TransitionRecord>, StoreError>;

    /// Ready steps (state `enqueued`) per namespace, for the queue-depth gauge and
    /// task-creation backpressure. Namespaces without ready steps are left out.
    async fn step_ready_counts(&self) -> Result<Vec<ReadyCount>, StoreError>;

    /// Cancels tasks in one transaction: each task not yet finished moves to
    /// `cancelled` (compare-and-swap on the states `cancel` may leave), and so do its
    /// steps that had not finished; a worker's later result for one of them loses its
    /// compare-and-swap. One outcome per requested task, in order.
    async fn task_cancel_many(&self, p: TaskCancelManyParams) -> Result<Vec<TaskCancelOutcome>, StoreError>;

    /// Creates tasks (template, task row, steps, edges, root steps enqueued) in one
    /// transaction. A task whose identity hash exists is not created again.
    async fn task_create_many(&self, p: TaskCreateManyParams) -> Result<Vec<TaskCreated>, StoreError>;

    /// Re-evaluates tasks from their step states and moves them on (the
    /// TaskFinalizer's entry point outside result processing). Race-free: the task
    /// change is a compare-and-swap, so two evaluations finalize a task once.
    async fn task_evaluate_many(
        &self,
        task_uuids: Vec<Uuid>,
        now: i64,
        processor: String,
    ) -> Result<Vec<TaskChange>, StoreError>;

    /// A task with its steps.
    async fn task_get(&self, task_uuid: Uuid) -> Result<Option<TaskView>, StoreError>;

    /// Tasks, newest first.
    async fn task_list(&self, p: TaskListParams) -> Result<Vec<TaskSummary>, StoreError>;

    /// The audit rows of a task, oldest first.
    async fn task_transitions(&self, task_uuid: Uuid) -> Result<Vec<crate::store::TransitionRecord>, StoreError>;

    /// Reaches the database and reads which migrations it has (`/ready`).
    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;

    /// Registers templates (e.g. a `tasker orchestrator --templates DIR` start): each
    /// one whose content hash is new is inserted; a known hash is left alone.
    async fn template_register_many(&self, templates: Vec<TemplateRecord>, now: i64) -> Result<(), StoreError>;

    /// A registered template: exactly `version` (compared as semver), or with `None`
    /// the highest semver version of `namespace/name` ("latest"; never string order).
    /// Among rows of one version, the most recently registered wins.
    async fn template_find(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<TemplateRecord>, StoreError>;

    /// The staleness sweep's write: finds tasks and steps stuck past `p.thresholds`
    /// and, in one transaction, records each (one per task, at most `p.limit`) in
    /// the dead-letter queue with a snapshot of the task and its steps, moves a stuck
    /// step `--dead_letter--> error` and holds the task `--dead_letter-->
    /// blocked_by_failures` (unless already held). A task with an open entry is left
    /// alone, so sweeps running at once record a task once.
    async fn dlq_sweep(&self, p: DlqSweepParams) -> Result<DlqSweepReport, StoreError>;

    /// Dead-letter entries, newest first.
    async fn dlq_list(&self, p: DlqListParams) -> Result<Vec<DlqEntry>, StoreError>;

    /// One dead-letter entry.
    async fn dlq_get(&self, entry_id: Uuid) -> Result<Option<DlqEntry>, StoreError>;

    /// Resolves an open entry in one transaction: the step action (a compare-and-swap
    /// checked against the state machine), its successors enqueued when it now
    /// satisfies them, the entry closed (compare-and-swap on `open`), and the task
    /// re-evaluated (reopened from `blocked_by_failures` or `error`).
    async fn dlq_resolve(&self, p: DlqResolveParams) -> Result<DlqResolveOutcome, StoreError>;

    /// How many entries are open.
    async fn dlq_open_count(&self) -> Result<u64, StoreError>;

    /// Closes connections (a clean WAL checkpoint on SQLite).
    async fn close(&self);

    /// Wake-ups from other processes: the namespaces in which steps became ready,
    /// as soon as their transactions commit (PostgreSQL LISTEN/NOTIFY). None when the
    /// backend has no such channel (SQLite), in which case workers rely on their
    /// polling interval for other processes' work.
    fn ready_notifications(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Tasks settled by any process: the uuid of each task that reached a terminal
    /// state or `blocked_by_failures`, as soon as its transaction commits
    /// (PostgreSQL LISTEN/NOTIFY). None without such a channel (SQLite), where a
    /// waiter in another process re-reads the task on an interval instead.
    fn task_settled_notifications(&self) -> Option<tokio::sync::broadcast::Receiver<Uuid>> {
        None
    }

    /// Creates one task: a wrapper over [`Store::task_create_many`].
    async fn task_create(&self, task: NewTask, now: i64, processor: String) -> Result<TaskCreated, StoreError> {
        let mut created = self
            .task_create_many(TaskCreateManyParams {
                tasks: vec![task],
                now,
                processor,
            })
            .await?;
        created.pop().ok_or_else(|| StoreError::Corrupt {
            table: "tasks",
            reason: "creation returned no row".into(),
        })
    }

    /// Cancels one task: a wrapper over [`Store::task_cancel_many`].
    async fn task_cancel(
        &self,
        task_uuid: Uuid,
        reason: Option<String>,
        now: i64,
        processor: String,
    ) -> Result<TaskCancelOutcome, StoreError> {
        let mut outcomes = self
            .task_cancel_many(TaskCancelManyParams {
                task_uuids: vec![task_uuid],
                reason,
                now,
                processor,
            })
            .await?;
        outcomes.pop().ok_or_else(|| StoreError::Corrupt {
            table: "tasks",
            reason: "cancellation returned no outcome".into(),
        })
    }

    /// Applies one result: a wrapper over [`Store::step_complete_many`].
    async fn step_complete(
        &self,
        completion: StepCompletion,
        now: i64,
        processor: String,
    ) -> Result<CompletionReport, StoreError> {
        self.step_complete_many(StepCompleteManyParams {
            completions: vec![completion],
            now,
            processor,
            eager: None,
        })
        .await
    }
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;

/// How to open a store (beyond its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL: keep a LISTEN connection for wake-ups from other processes
    /// ([`Store::ready_notifications`]). Off behind a pooler in transaction mode.
    /// Ignored by SQLite.
    pub listen: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { listen: true }
    }
}

impl StoreOptions {
    /// The defaults, with `listen` off when `TASKER_PG_LISTEN` is `false` or `0`.
    pub fn from_env() -> Self {
        let listen = std::env::var("TASKER_PG_LISTEN")
            .map(|v| v != "false" && v != "0")
            .unwrap_or(true);
        Self { listen }
    }
}

/// Opens the store a URL names and brings its schema up to date, with
/// [`StoreOptions::from_env`].
///
/// `postgres://…` (or `postgresql://…`) opens a PostgreSQL database (LISTEN for
/// wake-ups unless `TASKER_PG_LISTEN=false`); `sqlite://PATH`, `sqlite:PATH` or a
/// bare path open (and create) an SQLite file.
/// (In-memory SQLite is not supported: the store keeps separate read and write
/// connections, which would each see their own empty database.)
pub async fn open(url: &str) -> Result<SharedStore, StoreError> {
    open_with(url, StoreOptions::from_env()).await
}

/// Like [`open`], with explicit options (the engine passes its wake-up mode's).
pub async fn open_with(url: &str, options: StoreOptions) -> Result<SharedStore, StoreError> {
    if postgres::is_postgres_url(url) {
        return Ok(Arc::new(postgres::PgStore::open(url, options.listen).await?));
    }
    if let Some(path) = sqlite::path_from_url(url) {
        return Ok(Arc::new(sqlite::SqliteStore::open(&path).await?));
    }
    Err(StoreError::UnsupportedUrl { url: url.to_string() })
}
