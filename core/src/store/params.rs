//! Parameters and results of the Store methods: domain types only, never rows.
//! Each `<Method>Params` belongs to the Store method of the same name.

use crate::clock::EpochMillis;
use crate::state::{StepState, TaskState};
use crate::template::RetryPolicy;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A template as persisted with the tasks created from it.
#[derive(Debug, Clone)]
pub struct TemplateRecord {
    /// SHA-256 of the canonical template JSON; the primary key.
    pub content_hash: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The resolved template.
    pub definition: Value,
}

/// One step of a task about to be created.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Fresh UUIDv7.
    pub step_uuid: Uuid,
    /// Step name (unique in the task).
    pub name: String,
    /// The namespace whose workers claim the step: the step's own `namespace`
    /// key, else the template's.
    pub namespace: String,
    /// The template step it came from (equal to `name` for declared steps).
    pub template_step_name: String,
    /// `standard`, `decision`, ...
    pub step_type: String,
    /// Handler registry key.
    pub handler_callable: String,
    /// Entry point on the handler.
    pub handler_method: String,
    /// Passed to the handler as-is.
    pub handler_initialization: Value,
    /// Retry settings copied from the template.
    pub retry: RetryPolicy,
    /// Per-attempt timeout.
    pub timeout_ms: i64,
    /// Parents, by index into the task's `steps`.
    pub parents: Vec<usize>,
}

/// One task to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Fresh UUIDv7.
    pub task_uuid: Uuid,
    /// The template it runs.
    pub template: TemplateRecord,
    /// The task context (already validated).
    pub context: Value,
    /// Deduplication key: a second task with the same hash is not created.
    pub identity_hash: String,
    /// Travels with every step of the task, into handlers and logs.
    pub correlation_id: Uuid,
    /// Higher runs first (reserved; claims are oldest-ready first today).
    pub priority: i32,
    /// Keep the task in blocked_by_failures instead of error when steps fail.
    pub hold_failed: bool,
    /// The steps.
    pub steps: Vec<NewStep>,
}

/// Parameters of `Store::task_create_many`.
#[derive(Debug, Clone)]
pub struct TaskCreateManyParams {
    /// Tasks to create, in one transaction.
    pub tasks: Vec<NewTask>,
    /// Creation time.
    pub now: EpochMillis,
    /// Who creates them (audit only).
    pub processor: String,
}

/// What happened to one requested task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCreated {
    /// The task's UUID: the new one, or the existing task with the same identity.
    pub task_uuid: Uuid,
    /// False when a task with the same identity hash already existed.
    pub created: bool,
    /// The task's state after creation.
    pub state: TaskState,
    /// Steps enqueued at creation (the roots).
    pub enqueued_steps: usize,
    /// The task's namespace (its template's).
    pub namespace: String,
    /// The namespaces of the steps enqueued at creation, each once (for
    /// wake-ups; a step may name its own namespace). Empty when not created.
    pub enqueued_namespaces: Vec<String>,
}

/// Parameters of `Store::step_claim_ready_many`.
#[derive(Debug, Clone)]
pub struct StepClaimReadyManyParams {
    /// Namespace to claim from.
    pub namespace: String,
    /// Most steps to claim.
    pub limit: u32,
    /// Claim time; steps whose `ready_at` is later are not claimed.
    pub now: EpochMillis,
    /// Lease length: the claim is void after `now + lease_ms` unless extended.
    pub lease_ms: i64,
    /// The claiming worker (recorded on the step and in the audit row).
    pub worker_id: String,
}

/// A claimed step, hydrated with everything its handler needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedStep {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Which claim this is; the result must quote it.
    pub claim_seq: i64,
    /// Step name.
    pub name: String,
    /// Template step name.
    pub template_step_name: String,
    /// The step's namespace: the queue it was claimed from (the template's
    /// namespace unless the step names its own).
    pub namespace: String,
    /// Namespace of the task's template (with `task_name` and `task_version`, it
    /// identifies the template).
    pub task_namespace: String,
    /// Task template name.
    pub task_name: String,
    /// Task template version.
    pub task_version: String,
    /// Step type.
    pub step_type: String,
    /// Handler registry key.
    pub handler_callable: String,
    /// Entry point.
    pub handler_method: String,
    /// Handler configuration.
    pub handler_initialization: Value,
    /// Retry settings.
    pub retry: RetryPolicy,
    /// Per-attempt timeout.
    pub timeout_ms: i64,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// When the lease ends unless extended.
    pub lease_expires_at: EpochMillis,
    /// When this attempt times out.
    pub deadline_at: EpochMillis,
    /// Last checkpoint written by a batch worker, if any.
    pub checkpoint: Option<Value>,
    /// Task context.
    pub context: Value,
    /// Results of the parent steps, by step name.
    pub dependency_results: BTreeMap<String, Value>,
    /// Correlation id of the task.
    pub correlation_id: Uuid,
}

/// How a step's attempt ended, as decided by the ResultProcessor.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    /// Success: the step completes with `result`.
    Complete {
        /// The handler's result.
        result: Value,
    },
    /// Success of a decision or batchable step: the step completes with `result`,
    /// and the steps its `outcome` names are created in the same transaction
    /// (see `orchestration::step_expansion`). When they cannot be, the step fails
    /// instead (not retryable), saying why.
    Expand {
        /// The handler's result.
        result: Value,
        /// The decision or batch outcome read from it.
        outcome: crate::contract::DynamicOutcome,
    },
    /// Failure that will be retried once `ready_at` has passed.
    RetryAt {
        /// The error (message, type, ...).
        error: Value,
        /// When the next attempt may be claimed.
        ready_at: EpochMillis,
    },
    /// Failure that ends the step (permanent, or attempts exhausted).
    Fail {
        /// The error.
        error: Value,
    },
}

/// One result to apply.
#[derive(Debug, Clone)]
pub struct StepCompletion {
    /// The step.
    pub step_uuid: Uuid,
    /// The claim the result belongs to; a stale claim loses the compare-and-swap.
    pub claim_seq: i64,
    /// What happened.
    pub outcome: StepOutcome,
    /// Audit metadata (worker, execution time, ...).
    pub metadata: Value,
    /// Durable events written in the same transaction, when this result is applied
    /// and the step's new state passes each event's gate.
    pub events: Vec<super::domain_events::PendingDomainEvent>,
}

/// Parameters of `Store::step_complete_many`.
#[derive(Debug, Clone)]
pub struct StepCompleteManyParams {
    /// Results, applied in one transaction.
    pub completions: Vec<StepCompletion>,
    /// Time of application.
    pub now: EpochMillis,
    /// Who applies them (audit only).
    pub processor: String,
    /// Claim successors this batch enqueues, in the same transaction (eager dispatch).
    pub eager: Option<EagerClaim>,
}

/// Eager dispatch: the worker that wrote the results claims the successors they
/// made ready, in the same transaction, up to the handler slots the results free.
#[derive(Debug, Clone)]
pub struct EagerClaim {
    /// Namespaces the worker serves.
    pub namespaces: Vec<String>,
    /// Most steps to claim.
    pub limit: u32,
    /// Lease length.
    pub lease_ms: i64,
    /// The claiming worker.
    pub worker_id: String,
}

/// A step that became claimable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueuedStep {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its namespace (for wake-ups).
    pub namespace: String,
}

/// A task state change made while applying results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChange {
    /// The task.
    pub task_uuid: Uuid,
    /// State before.
    pub from: TaskState,
    /// State after.
    pub to: TaskState,
}

/// An applied result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedStep {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its state after the result.
    pub state: StepState,
}

/// What `Store::step_complete_many` did.
#[derive(Debug, Clone, Default)]
pub struct CompletionReport {
    /// Results applied.
    pub applied: Vec<AppliedStep>,
    /// Results refused because the step was no longer held by that claim (late
    /// results after a lease expiry, duplicates).
    pub rejected: Vec<Uuid>,
    /// Successor steps that became claimable.
    pub enqueued: Vec<EnqueuedStep>,
    /// Task state changes (finalizations included).
    pub tasks: Vec<TaskChange>,
    /// Successors claimed by eager dispatch (already `in_progress`, hydrated).
    pub claimed: Vec<ClaimedStep>,
    /// Durable events written with these results.
    pub events_stored: u64,
}

/// Parameters of `Store::step_lease_extend_many`.
#[derive(Debug, Clone)]
pub struct StepLeaseExtendManyParams {
    /// (step, claim) pairs still held by this worker.
    pub claims: Vec<(Uuid, i64)>,
    /// New lease end; capped at each step's deadline.
    pub lease_expires_at: EpochMillis,
    /// Time of the extension.
    pub now: EpochMillis,
}

/// Parameters of `Store::step_heartbeat`: a running handler's sign of life.
#[derive(Debug, Clone)]
pub struct StepHeartbeatParams {
    /// The step.
    pub step_uuid: Uuid,
    /// The claim the handler runs under.
    pub claim_seq: i64,
    /// New lease end; capped at the (possibly moved) deadline.
    pub lease_expires_at: EpochMillis,
    /// Move the attempt's deadline to this time (never earlier than it is).
    pub deadline_at: Option<EpochMillis>,
    /// A batch worker's checkpoint to save.
    pub checkpoint: Option<Value>,
    /// Time of the heartbeat.
    pub now: EpochMillis,
}

/// Why a claimed step goes back to the queue without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The worker handed it back (shutdown, capacity).
    Released,
    /// Its lease expired (the worker is gone or stuck).
    LeaseExpired,
}

/// Parameters of `Store::step_release_many`.
#[derive(Debug, Clone)]
pub struct StepReleaseManyParams {
    /// (step, claim) pairs to hand back.
    pub claims: Vec<(Uuid, i64)>,
    /// Why.
    pub reason: ReleaseReason,
    /// Time of release.
    pub now: EpochMillis,
    /// Who releases (audit only).
    pub processor: String,
}

/// A step whose lease has run out.
#[derive(Debug, Clone)]
pub struct ExpiredClaim {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its namespace.
    pub namespace: String,
    /// The claim that expired.
    pub claim_seq: i64,
    /// The attempt it was on.
    pub attempt: u32,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Its step type.
    pub step_type: crate::template::StepType,
    /// True when the attempt's deadline has also passed (a timeout, not a lost worker).
    pub past_deadline: bool,
    /// The step's name in its task.
    pub name: String,
    /// The template step it was made from (where its declared events are).
    pub template_step_name: String,
    /// Its task's template namespace.
    pub task_namespace: String,
    /// Its task's template name.
    pub task_name: String,
    /// Its task's template version.
    pub task_version: String,
    /// Its task's correlation id.
    pub correlation_id: Uuid,
}

/// Parameters of `Store::task_list`. The default lists the newest 100 tasks.
#[derive(Debug, Clone)]
pub struct TaskListParams {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks in this namespace.
    pub namespace: Option<String>,
    /// Most rows.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

impl Default for TaskListParams {
    fn default() -> Self {
        Self {
            state: None,
            namespace: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// A task as listed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct TaskSummary {
    /// The task.
    pub task_uuid: Uuid,
    /// Namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Current state.
    pub state: TaskState,
    /// Number of steps.
    pub step_count: u32,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Completion time, when terminal.
    pub completed_at: Option<EpochMillis>,
}

/// A step as shown to people and clients.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct StepView {
    /// The step.
    pub step_uuid: Uuid,
    /// Step name.
    pub name: String,
    /// Current state.
    pub state: StepState,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Handler callable.
    pub handler: String,
    /// The result of the last successful attempt.
    pub result: Option<Value>,
    /// The error of the last failed attempt.
    pub error: Option<Value>,
    /// When the step completed.
    pub completed_at: Option<EpochMillis>,
    /// When an enqueued step became claimable, or when a retry delay ends.
    pub ready_at: Option<EpochMillis>,
}

/// A task with its steps.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct TaskView {
    /// The task.
    pub task_uuid: Uuid,
    /// Namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Current state.
    pub state: TaskState,
    /// Task context.
    pub context: Value,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Completion time, when terminal.
    pub completed_at: Option<EpochMillis>,
    /// Steps, in creation order.
    pub steps: Vec<StepView>,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct TransitionRecord {
    /// Sort key (ascending = older first).
    pub transition_id: i64,
    /// State before (None for the creation row).
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// Event name.
    pub event: String,
    /// Audit metadata.
    pub metadata: Option<Value>,
    /// Who made the change (audit only).
    pub processor: Option<String>,
    /// When.
    pub created_at: EpochMillis,
    /// True for the newest row of the entity.
    pub most_recent: bool,
}

/// Parameters of `Store::task_cancel_many`.
#[derive(Debug, Clone)]
pub struct TaskCancelManyParams {
    /// Tasks to cancel, in one transaction.
    pub task_uuids: Vec<Uuid>,
    /// Why (recorded in the audit rows' metadata).
    pub reason: Option<String>,
    /// Time of the cancellation.
    pub now: EpochMillis,
    /// Who cancels (audit only).
    pub processor: String,
}

/// What `Store::task_cancel_many` did to one requested task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCancelOutcome {
    /// The task is now `cancelled`, and so are its steps that had not finished.
    Cancelled {
        /// The task.
        task_uuid: Uuid,
        /// Its namespace.
        namespace: String,
        /// Steps moved to `cancelled` (complete, cancelled and resolved steps keep their state).
        steps_cancelled: u32,
    },
    /// The task had already ended (complete, error, cancelled, resolved manually); nothing changed.
    AlreadyFinished {
        /// The task.
        task_uuid: Uuid,
        /// Its state.
        state: TaskState,
    },
    /// No such task.
    NotFound {
        /// The UUID asked for.
        task_uuid: Uuid,
    },
}

/// Ready steps of one namespace (`Store::step_ready_counts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCount {
    /// The namespace.
    pub namespace: String,
    /// Steps in `enqueued`, waiting for a worker.
    pub ready: u64,
}

/// Whether the database schema is the one this build expects (`Store::schema_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Highest migration version applied to the database (0 when none).
    pub applied: i64,
    /// Highest migration version embedded in this build.
    pub expected: i64,
}

impl SchemaStatus {
    /// True when the database has every migration this build knows.
    pub fn is_current(&self) -> bool {
        self.applied >= self.expected
    }
}
