//! The task state machine: the twelve [`TaskState`]s a task (one run of a template) moves
//! through, the eighteen [`TaskEvent`]s that move it, and [`TaskState::apply`], which says
//! which moves are legal. Also owns how a task is judged from its steps: [`StepCounts`],
//! [`evaluate`] and [`events_after_evaluation`] (used by the TaskFinalizer). Pure: no I/O.
//!
//! # Transition table
//!
//! Every legal `(state, event)` pair; every other pair is an [`InvalidTransition`].
//! (The unit tests check that this block, the code and the Mermaid diagram in
//! `docs/state-machines.md` list exactly the same edges.)
//!
//! ```text
//! pending                  --start-->                 initializing
//! initializing             --ready_steps_found-->     enqueuing_steps
//! initializing             --no_steps_found-->        complete
//! initializing             --no_dependencies_ready--> waiting_for_dependencies
//! enqueuing_steps          --steps_enqueued-->        steps_in_process
//! enqueuing_steps          --enqueue_failed-->        error
//! steps_in_process         --results_received-->      evaluating_results
//! evaluating_results       --all_steps_successful-->  complete
//! evaluating_results       --ready_steps_found-->     enqueuing_steps
//! evaluating_results       --steps_still_running-->   steps_in_process
//! evaluating_results       --awaiting_retry-->        waiting_for_retry
//! evaluating_results       --no_dependencies_ready--> waiting_for_dependencies
//! evaluating_results       --permanent_failure-->     blocked_by_failures
//! waiting_for_dependencies --dependencies_ready-->    evaluating_results
//! waiting_for_retry        --retry_ready-->           enqueuing_steps
//! waiting_for_retry        --results_received-->      evaluating_results
//! blocked_by_failures      --give_up-->               error
//! blocked_by_failures      --manual_resolution-->     resolved_manually
//! blocked_by_failures      --reopen-->                evaluating_results
//! error                    --reopen-->                evaluating_results
//!
//! # cancel: allowed from every non-terminal state
//! pending                  --cancel-->                cancelled
//! initializing             --cancel-->                cancelled
//! enqueuing_steps          --cancel-->                cancelled
//! steps_in_process         --cancel-->                cancelled
//! evaluating_results       --cancel-->                cancelled
//! waiting_for_dependencies --cancel-->                cancelled
//! waiting_for_retry        --cancel-->                cancelled
//! blocked_by_failures      --cancel-->                cancelled
//!
//! # dead_letter: the staleness sweep holds a stuck task for an operator
//! pending                  --dead_letter-->           blocked_by_failures
//! initializing             --dead_letter-->           blocked_by_failures
//! enqueuing_steps          --dead_letter-->           blocked_by_failures
//! steps_in_process         --dead_letter-->           blocked_by_failures
//! evaluating_results       --dead_letter-->           blocked_by_failures
//! waiting_for_dependencies --dead_letter-->           blocked_by_failures
//! waiting_for_retry        --dead_letter-->           blocked_by_failures
//! ```
//!
//! Terminal states: `complete`, `error`, `cancelled`, `resolved_manually`. The only event
//! any of them accepts is `reopen`, and only from `error`.
//!
//! # Who fires which event
//!
//! - **TaskRequest** creates the task `pending`, then `start`s it and, from
//!   `initializing`, reports what it found (`ready_steps_found` + `steps_enqueued` once the
//!   root steps are enqueued, `no_steps_found`, `no_dependencies_ready`, `enqueue_failed`).
//! - The **TaskFinalizer**, after a batch of step results, judges the task with
//!   [`evaluate`] and applies [`events_after_evaluation`].
//! - **Operators**: `manual_resolution`, `reopen`, `cancel`.
//! - The **staleness sweep** (`orchestration/staleness.rs`): `dead_letter`, in the
//!   transaction that records the task in the dead-letter queue.

use super::{InvalidTransition, StepState, UnknownEvent, UnknownState};
use serde::{Deserialize, Serialize};

/// Where one task is in its life, stored by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Just created by TaskRequest. Moved on by TaskRequest (`start`).
    Pending,
    /// TaskRequest is looking for the steps that can run first. Moved on by TaskRequest
    /// (`ready_steps_found`, `no_steps_found`, `no_dependencies_ready`).
    Initializing,
    /// Ready steps are being enqueued. Moved on by whoever enqueues them, in the same pass:
    /// TaskRequest for root steps, the TaskFinalizer for steps made ready by results
    /// (`steps_enqueued`, or `enqueue_failed`).
    EnqueuingSteps,
    /// Steps are enqueued or running. Moved on by the TaskFinalizer when results arrive
    /// (`results_received`); it writes nothing while steps are merely still running.
    StepsInProcess,
    /// Transient: the TaskFinalizer is judging the step results. Moved on by the
    /// TaskFinalizer in the same pass, by the evaluation (`all_steps_successful`,
    /// `ready_steps_found`, `steps_still_running`, `awaiting_retry`,
    /// `no_dependencies_ready`, `permanent_failure`).
    EvaluatingResults,
    /// Nothing runs and nothing waits for a retry, but steps are still pending. Moved on by
    /// the TaskFinalizer at its next evaluation (`dependencies_ready`).
    WaitingForDependencies,
    /// Nothing runs; some step waits out its retry delay (the StepExecutor claims it
    /// directly when the delay passes, without touching the task). Moved on by the
    /// TaskFinalizer when that step's result arrives (`results_received`); `retry_ready`
    /// is also legal here but the finalizer never produces it.
    WaitingForRetry,
    /// Some step failed permanently or was cancelled and nothing runs any more; the task is
    /// held here for an operator when the template sets `hold_failed_tasks`. Moved on by the
    /// TaskFinalizer (`give_up` when not holding; `reopen` when re-evaluating after step
    /// changes) or an operator (`manual_resolution`, `reopen`, `cancel`).
    BlockedByFailures,
    /// Every step complete or resolved manually (or the task had no steps). Terminal.
    Complete,
    /// Failed: steps failed permanently and the task was not held, or enqueuing failed.
    /// Terminal, except that an operator may `reopen` it (→ `evaluating_results`).
    Error,
    /// Cancelled by an operator. Terminal.
    Cancelled,
    /// Resolved by an operator from `blocked_by_failures`. Terminal.
    ResolvedManually,
}

/// Something that happens to a task. Written to audit rows by its
/// [`as_str`](TaskEvent::as_str) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEvent {
    /// `pending → initializing`: TaskRequest starts the task.
    Start,
    /// `initializing | evaluating_results → enqueuing_steps`: steps are ready to enqueue
    /// (TaskRequest for root steps, TaskFinalizer for newly ready steps).
    ReadyStepsFound,
    /// `initializing → complete`: the task has no steps.
    NoStepsFound,
    /// `initializing | evaluating_results → waiting_for_dependencies`: nothing can run yet
    /// (evaluation [`Evaluation::WaitingForDependencies`]).
    NoDependenciesReady,
    /// `enqueuing_steps → steps_in_process`: the ready steps were enqueued.
    StepsEnqueued,
    /// `enqueuing_steps → error`: enqueuing the ready steps failed.
    EnqueueFailed,
    /// `steps_in_process | waiting_for_retry → evaluating_results`: the TaskFinalizer
    /// received step results to judge.
    ResultsReceived,
    /// `evaluating_results → complete`: evaluation [`Evaluation::AllComplete`].
    AllStepsSuccessful,
    /// `evaluating_results → steps_in_process`: evaluation [`Evaluation::Running`] with no
    /// step newly enqueued.
    StepsStillRunning,
    /// `evaluating_results → waiting_for_retry`: evaluation [`Evaluation::AwaitingRetry`].
    AwaitingRetry,
    /// `evaluating_results → blocked_by_failures`: evaluation [`Evaluation::Blocked`].
    PermanentFailure,
    /// `waiting_for_dependencies → evaluating_results`: the TaskFinalizer re-judges a task
    /// that was waiting for dependencies.
    DependenciesReady,
    /// `waiting_for_retry → enqueuing_steps`: a retry is due and steps are to be enqueued.
    /// Legal, but not produced by [`events_after_evaluation`].
    RetryReady,
    /// `blocked_by_failures → error`: the TaskFinalizer gives up on a blocked task that the
    /// template does not hold.
    GiveUp,
    /// `blocked_by_failures → resolved_manually`: an operator resolves the task by hand.
    ManualResolution,
    /// `blocked_by_failures | error → evaluating_results`: the task is judged again
    /// (TaskFinalizer from `blocked_by_failures`; an operator from either).
    Reopen,
    /// Any non-terminal state `→ cancelled`: an operator cancels the task.
    Cancel,
    /// Any non-terminal state but `blocked_by_failures` `→ blocked_by_failures`: the
    /// staleness sweep found the task stuck and recorded it in the dead-letter queue;
    /// it is held there for an operator, whose resolution reopens it.
    DeadLetter,
}

impl TaskState {
    /// Every state, in declaration order.
    pub const ALL: [TaskState; 12] = [
        Self::Pending,
        Self::Initializing,
        Self::EnqueuingSteps,
        Self::StepsInProcess,
        Self::EvaluatingResults,
        Self::WaitingForDependencies,
        Self::WaitingForRetry,
        Self::BlockedByFailures,
        Self::Complete,
        Self::Error,
        Self::Cancelled,
        Self::ResolvedManually,
    ];

    /// The snake_case name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Initializing => "initializing",
            Self::EnqueuingSteps => "enqueuing_steps",
            Self::StepsInProcess => "steps_in_process",
            Self::EvaluatingResults => "evaluating_results",
            Self::WaitingForDependencies => "waiting_for_dependencies",
            Self::WaitingForRetry => "waiting_for_retry",
            Self::BlockedByFailures => "blocked_by_failures",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::ResolvedManually => "resolved_manually",
        }
    }

    /// complete, error, cancelled, resolved_manually.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Error | Self::Cancelled | Self::ResolvedManually
        )
    }

    /// Applies one event: the state it leads to, or [`InvalidTransition`] naming the
    /// machine (`"task"`), this state and the event.
    pub fn apply(self, event: TaskEvent) -> Result<TaskState, InvalidTransition> {
        use TaskEvent as E;
        use TaskState as S;
        let to = match (self, event) {
            (S::Pending, E::Start) => S::Initializing,
            (S::Initializing, E::ReadyStepsFound) => S::EnqueuingSteps,
            (S::Initializing, E::NoStepsFound) => S::Complete,
            (S::Initializing, E::NoDependenciesReady) => S::WaitingForDependencies,
            (S::EnqueuingSteps, E::StepsEnqueued) => S::StepsInProcess,
            (S::EnqueuingSteps, E::EnqueueFailed) => S::Error,
            (S::StepsInProcess, E::ResultsReceived) => S::EvaluatingResults,
            (S::EvaluatingResults, E::AllStepsSuccessful) => S::Complete,
            (S::EvaluatingResults, E::ReadyStepsFound) => S::EnqueuingSteps,
            (S::EvaluatingResults, E::StepsStillRunning) => S::StepsInProcess,
            (S::EvaluatingResults, E::AwaitingRetry) => S::WaitingForRetry,
            (S::EvaluatingResults, E::NoDependenciesReady) => S::WaitingForDependencies,
            (S::EvaluatingResults, E::PermanentFailure) => S::BlockedByFailures,
            (S::WaitingForDependencies, E::DependenciesReady) => S::EvaluatingResults,
            (S::WaitingForRetry, E::RetryReady) => S::EnqueuingSteps,
            (S::WaitingForRetry, E::ResultsReceived) => S::EvaluatingResults,
            (S::BlockedByFailures, E::GiveUp) => S::Error,
            (S::BlockedByFailures, E::ManualResolution) => S::ResolvedManually,
            (S::BlockedByFailures | S::Error, E::Reopen) => S::EvaluatingResults,
            (s, E::Cancel) if !s.is_terminal() => S::Cancelled,
            (s, E::DeadLetter) if !s.is_terminal() && s != S::BlockedByFailures => S::BlockedByFailures,
            _ => {
                return Err(InvalidTransition {
                    machine: "task",
                    from: self.as_str(),
                    event: event.as_str(),
                })
            }
        };
        Ok(to)
    }

    /// Applies events in order, returning each hop's event and resulting state; stops at
    /// the first illegal event and returns its [`InvalidTransition`] (no partial result).
    pub fn walk(self, events: &[TaskEvent]) -> Result<Vec<(TaskEvent, TaskState)>, InvalidTransition> {
        let mut at = self;
        let mut hops = Vec::with_capacity(events.len());
        for &e in events {
            at = at.apply(e)?;
            hops.push((e, at));
        }
        Ok(hops)
    }
}

impl TaskEvent {
    /// Every event, in declaration order.
    pub const ALL: [TaskEvent; 18] = [
        Self::Start,
        Self::ReadyStepsFound,
        Self::NoStepsFound,
        Self::NoDependenciesReady,
        Self::StepsEnqueued,
        Self::EnqueueFailed,
        Self::ResultsReceived,
        Self::AllStepsSuccessful,
        Self::StepsStillRunning,
        Self::AwaitingRetry,
        Self::PermanentFailure,
        Self::DependenciesReady,
        Self::RetryReady,
        Self::GiveUp,
        Self::ManualResolution,
        Self::Reopen,
        Self::Cancel,
        Self::DeadLetter,
    ];

    /// The snake_case name written to audit rows.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::ReadyStepsFound => "ready_steps_found",
            Self::NoStepsFound => "no_steps_found",
            Self::NoDependenciesReady => "no_dependencies_ready",
            Self::StepsEnqueued => "steps_enqueued",
            Self::EnqueueFailed => "enqueue_failed",
            Self::ResultsReceived => "results_received",
            Self::AllStepsSuccessful => "all_steps_successful",
            Self::StepsStillRunning => "steps_still_running",
            Self::AwaitingRetry => "awaiting_retry",
            Self::PermanentFailure => "permanent_failure",
            Self::DependenciesReady => "dependencies_ready",
            Self::RetryReady => "retry_ready",
            Self::GiveUp => "give_up",
            Self::ManualResolution => "manual_resolution",
            Self::Reopen => "reopen",
            Self::Cancel => "cancel",
            Self::DeadLetter => "dead_letter",
        }
    }
}

impl std::str::FromStr for TaskState {
    type Err = UnknownState;

    /// Parses an [`as_str`](TaskState::as_str) name (exact, case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownState {
                machine: "task",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for TaskState {
    /// Writes the [`as_str`](TaskState::as_str) name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskEvent {
    type Err = UnknownEvent;

    /// Parses an [`as_str`](TaskEvent::as_str) name (exact, case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownEvent {
                machine: "task",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for TaskEvent {
    /// Writes the [`as_str`](TaskEvent::as_str) name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many of a task's steps are in each state (indexed by [`StepState`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepCounts {
    counts: [u32; 10],
}

impl StepCounts {
    /// Adds `n` steps in `state`.
    pub fn add(&mut self, state: StepState, n: u32) {
        self.counts[state as usize] += n;
    }

    /// Steps in `state`.
    pub fn get(&self, state: StepState) -> u32 {
        self.counts[state as usize]
    }

    /// All steps.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

/// What a task's step counts say about the task (see [`evaluate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Every step complete or resolved manually (also: the task has no steps).
    AllComplete,
    /// Some step is enqueued, running or has a result awaiting orchestration.
    Running,
    /// Nothing runs; some step waits out a retry delay.
    AwaitingRetry,
    /// Nothing runs or waits for a retry, but steps are still pending.
    WaitingForDependencies,
    /// A step failed permanently (or was cancelled) and nothing runs any more.
    Blocked,
}

/// Judges a task by its step counts. Rules, first match wins:
///
/// 1. every step complete or resolved_manually (vacuously true with no steps) →
///    [`Evaluation::AllComplete`];
/// 2. some step in `error` or `cancelled` and none in flight → [`Evaluation::Blocked`]
///    (even if other steps wait for a retry or are pending);
/// 3. some step in flight (enqueued, in_progress, enqueued_for_orchestration,
///    enqueued_as_error_for_orchestration) → [`Evaluation::Running`] (even with failed
///    steps: the task is not blocked until everything in flight has landed);
/// 4. some step waiting_for_retry → [`Evaluation::AwaitingRetry`];
/// 5. otherwise (only pending steps besides satisfied ones) →
///    [`Evaluation::WaitingForDependencies`].
pub fn evaluate(c: &StepCounts) -> Evaluation {
    let satisfied = c.get(StepState::Complete) + c.get(StepState::ResolvedManually);
    let in_flight: u32 = StepState::ALL
        .into_iter()
        .filter(|s| s.is_in_flight())
        .map(|s| c.get(s))
        .sum();
    let failed = c.get(StepState::Error) + c.get(StepState::Cancelled);
    if satisfied == c.total() {
        Evaluation::AllComplete
    } else if failed > 0 && in_flight == 0 {
        Evaluation::Blocked
    } else if in_flight > 0 {
        Evaluation::Running
    } else if c.get(StepState::WaitingForRetry) > 0 {
        Evaluation::AwaitingRetry
    } else {
        Evaluation::WaitingForDependencies
    }
}

/// The events that take a task from `from` to where `evaluation` calls for, after a batch
/// of step results was applied. Empty when nothing changes (a task already terminal, or a
/// task in `steps_in_process` whose steps are still running with none newly enqueued: no
/// audit rows are written for evaluations that change nothing), and for `pending`,
/// `initializing` and `enqueuing_steps`, which TaskRequest still owns.
///
/// - `newly_enqueued`: this pass enqueued steps that became ready; with
///   [`Evaluation::Running`] the task goes through `enqueuing_steps` again.
/// - `hold_failed`: the template's `hold_failed_tasks`; with [`Evaluation::Blocked`] the task
///   stays in `blocked_by_failures` instead of going on to `error`.
///
/// The first event leaves the current state (`results_received`, `dependencies_ready` or
/// `reopen`; none from `evaluating_results`), the rest follow the evaluation. The final
/// state is: AllComplete → `complete`, Running → `steps_in_process`, AwaitingRetry →
/// `waiting_for_retry`, WaitingForDependencies → `waiting_for_dependencies`, Blocked →
/// `error` (or `blocked_by_failures` when `hold_failed`).
pub fn events_after_evaluation(
    from: TaskState,
    evaluation: Evaluation,
    newly_enqueued: bool,
    hold_failed: bool,
) -> Vec<TaskEvent> {
    use TaskEvent as E;
    if from.is_terminal() {
        return vec![];
    }
    if from == TaskState::StepsInProcess && evaluation == Evaluation::Running && !newly_enqueued {
        return vec![];
    }
    let mut events = match from {
        TaskState::StepsInProcess | TaskState::WaitingForRetry => vec![E::ResultsReceived],
        TaskState::WaitingForDependencies => vec![E::DependenciesReady],
        // `Error` never gets here (it is terminal, handled above): an errored task is only
        // reopened by an explicit operator `reopen`.
        TaskState::BlockedByFailures | TaskState::Error => vec![E::Reopen],
        TaskState::EvaluatingResults => vec![],
        _ => return vec![],
    };
    match evaluation {
        Evaluation::AllComplete => events.push(E::AllStepsSuccessful),
        Evaluation::Running if newly_enqueued => events.extend([E::ReadyStepsFound, E::StepsEnqueued]),
        Evaluation::Running => events.push(E::StepsStillRunning),
        Evaluation::AwaitingRetry => events.push(E::AwaitingRetry),
        Evaluation::WaitingForDependencies => events.push(E::NoDependenciesReady),
        Evaluation::Blocked => {
            events.push(E::PermanentFailure);
            if !hold_failed {
                events.push(E::GiveUp);
            }
        }
    }
    events
}
