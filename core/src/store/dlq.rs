//! The dead-letter queue as both backends share it: what an entry is, what the
//! staleness sweep looks for (its thresholds and reasons), how a detection is
//! turned into the one write that records it, and how an operator's resolution is
//! planned (the step's hops and the task's re-evaluation), all checked against the
//! state machines before any SQL runs.
//!
//! The backends (`sqlite/dlq.rs`, `postgres/dlq.rs`) only run the statements; every
//! decision is here, so both behave the same.

use super::batch::CountRow;
use super::plan::TransitionPlan;
use crate::clock::EpochMillis;
use crate::orchestration::task_finalizer::plan_after_results;
use crate::state::task::{evaluate, events_after_evaluation};
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use uuid::Uuid;

/// Why the staleness sweep recorded a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqReason {
    /// A step claimed by a worker whose lease ran out longer ago than the grace
    /// period, and nobody handed it back (the lease sweep is not running or failing).
    StepLeaseLost,
    /// A step ready for a worker that no worker claimed for too long (no live worker
    /// serves its namespace).
    StepEnqueuedTooLong,
    /// The task waited for dependencies too long with nothing running.
    WaitingForDependenciesTooLong,
    /// The task waited for a retry too long with nothing running.
    WaitingForRetryTooLong,
    /// The task stayed in `steps_in_process` too long without a state change.
    StepsInProcessTooLong,
    /// The task was held in `blocked_by_failures` too long.
    BlockedTooLong,
    /// The task stayed in `error` too long without an operator looking at it.
    ErrorUnresolved,
    /// The task is older than its maximum lifetime and not finished.
    MaxLifetimeExceeded,
}

impl DlqReason {
    /// Every reason, in declaration order.
    pub const ALL: [DlqReason; 8] = [
        Self::StepLeaseLost,
        Self::StepEnqueuedTooLong,
        Self::WaitingForDependenciesTooLong,
        Self::WaitingForRetryTooLong,
        Self::StepsInProcessTooLong,
        Self::BlockedTooLong,
        Self::ErrorUnresolved,
        Self::MaxLifetimeExceeded,
    ];

    /// The stored name (also the metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StepLeaseLost => "step_lease_lost",
            Self::StepEnqueuedTooLong => "step_enqueued_too_long",
            Self::WaitingForDependenciesTooLong => "waiting_for_dependencies_too_long",
            Self::WaitingForRetryTooLong => "waiting_for_retry_too_long",
            Self::StepsInProcessTooLong => "steps_in_process_too_long",
            Self::BlockedTooLong => "blocked_too_long",
            Self::ErrorUnresolved => "error_unresolved",
            Self::MaxLifetimeExceeded => "max_lifetime_exceeded",
        }
    }

    /// True when the reason names a stuck step (which the sweep moves to `error`).
    pub fn is_step_level(self) -> bool {
        matches!(self, Self::StepLeaseLost | Self::StepEnqueuedTooLong)
    }
}

impl std::str::FromStr for DlqReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown DLQ reason `{s}` (expected one of {})", names.join(", "))
        })
    }
}

impl std::fmt::Display for DlqReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an entry still waits for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqStatus {
    /// Recorded, not resolved yet (at most one per task).
    Open,
    /// Resolved by an operator.
    Resolved,
}

impl DlqStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for DlqStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "resolved" => Ok(Self::Resolved),
            other => Err(format!("unknown DLQ status `{other}` (expected open or resolved)")),
        }
    }
}

/// How an operator resolved an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqResolution {
    /// The step runs again (attempts reset).
    RetryStep,
    /// The step was marked resolved by hand; its successors run.
    ResolveStep,
    /// The step was completed with a result the operator supplied.
    CompleteStep,
    /// Nobody had to: the task finished (complete, cancelled, resolved) while its entry
    /// was open, and the next sweep closed the entry.
    TaskFinished,
}

impl DlqResolution {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RetryStep => "retry_step",
            Self::ResolveStep => "resolve_step",
            Self::CompleteStep => "complete_step",
            Self::TaskFinished => "task_finished",
        }
    }
}

impl std::fmt::Display for DlqResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dead-letter queue entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DlqEntry {
    /// The entry (UUIDv7).
    pub entry_id: Uuid,
    /// The task it holds.
    pub task_uuid: Uuid,
    /// The task's namespace.
    pub namespace: String,
    /// The task's template name.
    pub task_name: String,
    /// The stuck step, for a step-level reason.
    pub step_uuid: Option<Uuid>,
    /// Why it was recorded.
    pub reason: DlqReason,
    /// The task's state when it was recorded.
    pub task_state: TaskState,
    /// The state that was stale (the step's for a step-level reason, else the task's).
    pub stale_state: String,
    /// Since when that state had not changed (for `step_lease_lost`: when the lease ended).
    pub stale_since: EpochMillis,
    /// How long it had been stale when detected.
    pub stale_for_ms: i64,
    /// The threshold it passed.
    pub threshold_ms: i64,
    /// The task with its steps at detection time.
    pub snapshot: Value,
    /// Open or resolved.
    pub status: DlqStatus,
    /// How it was resolved (`task_finished`: closed by the sweep, the task had finished).
    pub resolution: Option<DlqResolution>,
    /// The step the resolution acted on.
    pub resolution_step_uuid: Option<Uuid>,
    /// The operator's note.
    pub resolution_note: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The engine process whose sweep recorded it.
    pub detected_by: Option<String>,
    /// When it was recorded.
    pub detected_at: EpochMillis,
    /// When it was resolved.
    pub resolved_at: Option<EpochMillis>,
}

/// How long each kind of staleness may last before the sweep records it, in
/// milliseconds; None turns a rule off. Template `lifecycle` keys override the
/// task-level ones per task (in minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleThresholds {
    /// A claimed step whose lease ended this long ago (`step_lease_lost`).
    pub step_lease_grace_ms: Option<i64>,
    /// An enqueued step no worker claimed (`step_enqueued_too_long`).
    pub step_enqueued_ms: Option<i64>,
    /// `waiting_for_dependencies` (template `max_waiting_for_dependencies_minutes`).
    pub waiting_for_dependencies_ms: Option<i64>,
    /// `waiting_for_retry` (template `max_waiting_for_retry_minutes`).
    pub waiting_for_retry_ms: Option<i64>,
    /// `steps_in_process` without a state change (template `max_steps_in_process_minutes`).
    pub steps_in_process_ms: Option<i64>,
    /// `blocked_by_failures`.
    pub blocked_ms: Option<i64>,
    /// `error`.
    pub error_ms: Option<i64>,
    /// Age of an unfinished task (template `max_duration_minutes`).
    pub max_lifetime_ms: Option<i64>,
}

/// Parameters of `Store::dlq_sweep`.
#[derive(Debug, Clone)]
pub struct DlqSweepParams {
    /// The rules.
    pub thresholds: StaleThresholds,
    /// Most tasks recorded by this call.
    pub limit: u32,
    /// Time of the sweep.
    pub now: EpochMillis,
    /// Who sweeps (audit rows, `detected_by`).
    pub processor: String,
}

/// What one `Store::dlq_sweep` call found and recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DlqSweepReport {
    /// The reason of each stale task found (one per task), recorded or not.
    pub detected: Vec<DlqReason>,
    /// The entries this call recorded (a task another sweep recorded first is not here).
    pub recorded: Vec<DlqEntry>,
    /// Open entries this call closed because their task had finished (`task_finished`).
    pub closed: u64,
}

/// Parameters of `Store::dlq_list`. The default lists the newest 100 entries of any status.
#[derive(Debug, Clone)]
pub struct DlqListParams {
    /// Only entries with this status (None: all).
    pub status: Option<DlqStatus>,
    /// Only entries recorded for this reason.
    pub reason: Option<DlqReason>,
    /// Only entries of tasks in this namespace.
    pub namespace: Option<String>,
    /// Most rows.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

impl Default for DlqListParams {
    fn default() -> Self {
        Self {
            status: None,
            reason: None,
            namespace: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// What an operator does to resolve an entry: one action on one step of its task.
#[derive(Debug, Clone, PartialEq)]
pub enum DlqAction {
    /// Run the step again: `error` (or `waiting_for_retry`) → `pending`, attempts
    /// reset, and on to `enqueued` when its parents are done.
    RetryStep {
        /// The step.
        step_uuid: Uuid,
    },
    /// Mark the step `resolved_manually`; it satisfies its successors.
    ResolveStep {
        /// The step.
        step_uuid: Uuid,
    },
    /// Mark the step `complete` with `result`, which its successors receive.
    CompleteStep {
        /// The step.
        step_uuid: Uuid,
        /// The result recorded as the step's.
        result: Value,
    },
}

impl DlqAction {
    /// The step acted on.
    pub fn step_uuid(&self) -> Uuid {
        match self {
            Self::RetryStep { step_uuid } | Self::ResolveStep { step_uuid } | Self::CompleteStep { step_uuid, .. } => {
                *step_uuid
            }
        }
    }

    /// The resolution kind recorded on the entry.
    pub fn resolution(&self) -> DlqResolution {
        match self {
            Self::RetryStep { .. } => DlqResolution::RetryStep,
            Self::ResolveStep { .. } => DlqResolution::ResolveStep,
            Self::CompleteStep { .. } => DlqResolution::CompleteStep,
        }
    }
}

/// Parameters of `Store::dlq_resolve`.
#[derive(Debug, Clone)]
pub struct DlqResolveParams {
    /// The entry.
    pub entry_id: Uuid,
    /// What to do.
    pub action: DlqAction,
    /// A note for the record.
    pub note: Option<String>,
    /// Who resolves (recorded on the entry and in the audit rows' metadata).
    pub actor: String,
    /// Time of the resolution.
    pub now: EpochMillis,
    /// The process writing it (audit rows).
    pub processor: String,
    /// Durable domain events the resolution fires (the step's declared events,
    /// prepared by the caller): written in the resolution's transaction, each only
    /// when its gate passes for the state the step reaches. Usually empty.
    pub events: Vec<super::PendingDomainEvent>,
}

/// The events of `params` that a resolution leaving its step in `state` writes.
pub fn resolution_events(params: &DlqResolveParams, state: StepState) -> Vec<crate::events::domain::DomainEvent> {
    params
        .events
        .iter()
        .filter(|p| p.gate.passes(state))
        .map(|p| p.event.clone())
        .collect()
}

/// What `Store::dlq_resolve` did.
#[derive(Debug, Clone, PartialEq)]
pub enum DlqResolveOutcome {
    /// Resolved: the step moved, the entry is closed, the task was re-evaluated.
    Resolved {
        /// The entry as it is now.
        entry: DlqEntry,
        /// The step's new state.
        step_state: StepState,
        /// The task's move, if it moved.
        task: Option<super::TaskChange>,
        /// Namespaces in which steps became ready (to wake their workers).
        enqueued_namespaces: Vec<String>,
        /// How many of the resolution's events were written.
        events_stored: u64,
    },
    /// No entry with that id.
    NotFound,
    /// The entry was resolved before; nothing changed.
    AlreadyResolved {
        /// The entry as it is.
        entry: DlqEntry,
    },
    /// The step is not one of the entry's task's steps.
    StepNotInTask {
        /// The step asked for.
        step_uuid: Uuid,
    },
    /// The step's state does not allow the action (e.g. retrying a complete step).
    StepNotResolvable {
        /// The step.
        step_uuid: Uuid,
        /// Its state.
        state: StepState,
        /// The action asked for.
        resolution: DlqResolution,
    },
}

/// One stale thing the candidates query found (JSON `data` column on both backends).
#[derive(Debug, Clone, Deserialize)]
pub struct StaleCandidate {
    /// The task.
    pub task_uuid: Uuid,
    /// The stuck step, for a step-level reason.
    pub step_uuid: Option<Uuid>,
    /// Why.
    pub reason: DlqReason,
    /// The task's state.
    pub task_state: TaskState,
    /// The stale state (the step's or the task's).
    pub stale_state: String,
    /// Since when.
    pub stale_since: EpochMillis,
    /// The threshold it passed.
    pub threshold_ms: i64,
    /// The task row's `updated_at` (to see it did not move before it was locked).
    pub task_updated_at: EpochMillis,
}

/// One candidate per task, the most specific reason first (a stuck step names the
/// cause better than the task's state), at most `limit` tasks, oldest first.
pub fn pick_candidates(mut found: Vec<StaleCandidate>, limit: u32) -> Vec<StaleCandidate> {
    let rank = |r: DlqReason| DlqReason::ALL.iter().position(|x| *x == r).unwrap_or(usize::MAX);
    found.sort_by_key(|c| (rank(c.reason), c.stale_since));
    let mut seen = HashSet::new();
    found
        .into_iter()
        .filter(|c| seen.insert(c.task_uuid))
        .take(limit as usize)
        .collect()
}

/// The plan of the step move a step-level detection makes (`… --dead_letter--> error`).
pub fn step_dead_letter_plan(stale_state: &str) -> Option<TransitionPlan> {
    let from: StepState = stale_state.parse().ok()?;
    TransitionPlan::step(from, &[StepEvent::DeadLetter]).ok()
}

/// The plan of the task move a detection makes: `--dead_letter--> blocked_by_failures`,
/// or None when the task is already held (`blocked_by_failures`, `error`).
pub fn task_dead_letter_plan(state: TaskState) -> Option<TransitionPlan> {
    TransitionPlan::task(state, &[TaskEvent::DeadLetter]).ok()
}

/// The write of a sweep: one JSON object per detection, with the entry's fields, the
/// planned moves (`step_to`/`task_to` null when that row stays) and the audit metadata.
pub fn record_payload(candidates: &[StaleCandidate], now: EpochMillis) -> Value {
    let rows = candidates
        .iter()
        .map(|c| {
            let entry_id = Uuid::now_v7();
            let step_plan = c
                .step_uuid
                .and_then(|_| step_dead_letter_plan(&c.stale_state))
                .map(|p| p.final_state());
            let task_plan = task_dead_letter_plan(c.task_state).map(|p| p.final_state());
            let stale_for_ms = now - c.stale_since;
            let metadata = json!({
                "reason": c.reason.as_str(), "entry_id": entry_id, "stale_state": c.stale_state,
                "stale_for_ms": stale_for_ms, "threshold_ms": c.threshold_ms,
            });
            json!({
                "entry_id": entry_id, "task_uuid": c.task_uuid, "step_uuid": c.step_uuid,
                "reason": c.reason.as_str(), "task_state": c.task_state.as_str(), "stale_state": c.stale_state,
                "stale_since": c.stale_since, "stale_for_ms": stale_for_ms, "threshold_ms": c.threshold_ms,
                "step_to": step_plan, "task_to": task_plan,
                "event": StepEvent::DeadLetter.as_str(),
                "metadata": metadata,
                "step_error": {
                    "type": "dead_letter",
                    "message": format!(
                        "{} in `{}` for {} ms (threshold {} ms); recorded in the dead-letter queue as {}",
                        c.reason, c.stale_state, stale_for_ms, c.threshold_ms, entry_id
                    ),
                },
            })
        })
        .collect();
    Value::Array(rows)
}

/// What the resolution transaction read before deciding: the entry, and the step
/// acted on (None when no such step exists).
#[derive(Debug, Clone, Deserialize)]
pub struct ResolveTarget {
    /// The step's task.
    pub task_uuid: Uuid,
    /// Its state.
    pub state: StepState,
    /// Parents not yet complete.
    pub pending_parents: i64,
}

/// The step write of a resolution, checked against the state machine.
#[derive(Debug, Clone)]
pub struct ResolvePlan {
    /// The step's hops.
    pub plan: TransitionPlan,
    /// Reset `attempts` to 0 (retry).
    pub reset_attempts: bool,
    /// The step now satisfies its successors (resolve, complete).
    pub satisfies: bool,
    /// The result to store (complete).
    pub result: Option<Value>,
    /// Audit metadata of every row the resolution writes.
    pub metadata: Value,
}

/// Decides a resolution: the outcome to report at once (a refusal), or the step's plan.
pub fn plan_resolution(
    entry: &DlqEntry,
    target: Option<&ResolveTarget>,
    p: &DlqResolveParams,
) -> Result<ResolvePlan, Box<DlqResolveOutcome>> {
    if entry.status == DlqStatus::Resolved {
        return Err(Box::new(DlqResolveOutcome::AlreadyResolved { entry: entry.clone() }));
    }
    let step_uuid = p.action.step_uuid();
    let target = target
        .filter(|t| t.task_uuid == entry.task_uuid)
        .ok_or(Box::new(DlqResolveOutcome::StepNotInTask { step_uuid }))?;
    let resolution = p.action.resolution();
    let refused = || {
        Box::new(DlqResolveOutcome::StepNotResolvable {
            step_uuid,
            state: target.state,
            resolution,
        })
    };
    let mut events = match (&p.action, target.state) {
        (DlqAction::RetryStep { .. }, StepState::Error) => vec![StepEvent::ResetForRetry],
        (DlqAction::RetryStep { .. }, StepState::WaitingForRetry) => vec![StepEvent::Retry],
        (DlqAction::RetryStep { .. }, _) => return Err(refused()),
        (DlqAction::ResolveStep { .. }, _) => vec![StepEvent::ResolveManually],
        (DlqAction::CompleteStep { .. }, _) => vec![StepEvent::CompleteManually],
    };
    if resolution == DlqResolution::RetryStep && target.pending_parents == 0 {
        events.push(StepEvent::Enqueue);
    }
    let plan = TransitionPlan::step(target.state, &events).map_err(|_| refused())?;
    Ok(ResolvePlan {
        plan,
        reset_attempts: resolution == DlqResolution::RetryStep,
        satisfies: resolution != DlqResolution::RetryStep,
        result: match &p.action {
            DlqAction::CompleteStep { result, .. } => Some(result.clone()),
            _ => None,
        },
        metadata: json!({
            "dlq_entry_id": entry.entry_id, "resolution": resolution.as_str(),
            "resolved_by": p.actor, "note": p.note,
        }),
    })
}

/// The task's move after a resolution: the TaskFinalizer's rule, except that a task
/// in `error` is reopened first (the finalizer never leaves `error`; an operator's
/// resolution does). Same shape as [`super::batch::plans_from_counts`].
pub fn resume_plans(rows: Vec<CountRow>, newly_enqueued: bool) -> super::batch::TaskPlans {
    let touched: HashSet<Uuid> = if newly_enqueued {
        rows.iter().map(|r| r.task_uuid).collect()
    } else {
        HashSet::new()
    };
    super::batch::plans_from_counts_with(rows, &touched, |state, hold, counts, newly| {
        if state != TaskState::Error {
            return plan_after_results(state, hold, counts, newly);
        }
        let mut events = vec![TaskEvent::Reopen];
        events.extend(events_after_evaluation(
            TaskState::EvaluatingResults,
            evaluate(counts),
            newly,
            hold,
        ));
        TransitionPlan::task(state, &events).ok()
    })
}

/// The thresholds as the candidates query binds them (in this order).
pub fn threshold_binds(t: &StaleThresholds) -> [Option<i64>; 8] {
    [
        t.step_lease_grace_ms,
        t.step_enqueued_ms,
        t.waiting_for_dependencies_ms,
        t.waiting_for_retry_ms,
        t.steps_in_process_ms,
        t.blocked_ms,
        t.error_ms,
        t.max_lifetime_ms,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(task: Uuid, reason: DlqReason, since: i64) -> StaleCandidate {
        StaleCandidate {
            task_uuid: task,
            step_uuid: None,
            reason,
            task_state: TaskState::StepsInProcess,
            stale_state: "steps_in_process".into(),
            stale_since: since,
            threshold_ms: 1,
            task_updated_at: since,
        }
    }

    #[test]
    fn one_candidate_per_task_with_the_most_specific_reason() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let picked = pick_candidates(
            vec![
                candidate(a, DlqReason::MaxLifetimeExceeded, 1),
                candidate(b, DlqReason::StepsInProcessTooLong, 5),
                candidate(a, DlqReason::StepEnqueuedTooLong, 9),
            ],
            10,
        );
        let got: Vec<(Uuid, DlqReason)> = picked.iter().map(|c| (c.task_uuid, c.reason)).collect();
        assert_eq!(
            got,
            vec![
                (a, DlqReason::StepEnqueuedTooLong),
                (b, DlqReason::StepsInProcessTooLong)
            ]
        );
        assert_eq!(pick_candidates(picked, 1).len(), 1);
    }

    #[test]
    fn a_held_task_is_recorded_without_a_move_and_a_running_one_is_held() {
        assert!(task_dead_letter_plan(TaskState::Error).is_none());
        assert!(task_dead_letter_plan(TaskState::BlockedByFailures).is_none());
        assert_eq!(
            task_dead_letter_plan(TaskState::WaitingForRetry).unwrap().final_state(),
            "blocked_by_failures"
        );
        assert_eq!(step_dead_letter_plan("in_progress").unwrap().final_state(), "error");
        assert!(step_dead_letter_plan("complete").is_none());
        assert!(step_dead_letter_plan("nonsense").is_none());
    }

    #[test]
    fn every_reason_is_named_once() {
        let names: HashSet<&str> = DlqReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DlqReason::ALL.len());
        for r in DlqReason::ALL {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json, r.as_str());
            assert_eq!(r.as_str().parse::<DlqReason>(), Ok(r));
        }
        assert!("nonsense".parse::<DlqReason>().unwrap_err().contains("step_lease_lost"));
    }
}
