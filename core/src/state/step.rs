//! The step state machine: the ten [`StepState`]s one workflow step moves through, the
//! fourteen [`StepEvent`]s that move it, and the one function that says which moves are
//! legal ([`StepState::apply`]). Pure: no I/O, no clock. The store persists each hop as a
//! compare-and-swap on the step row's `state` column plus an audit row (see
//! `docs/state-machines.md`).
//!
//! # Transition table
//!
//! Every legal `(state, event)` pair; every other pair is an [`InvalidTransition`].
//! (The unit tests check that this block, the code and the Mermaid diagram in
//! `docs/state-machines.md` list exactly the same edges.)
//!
//! ```text
//! # the normal path
//! pending                             --enqueue-->            enqueued
//! enqueued                            --start-->              in_progress
//! in_progress                         --succeed-->            enqueued_for_orchestration
//! in_progress                         --fail-->               enqueued_as_error_for_orchestration
//! in_progress                         --release-->            enqueued
//! in_progress                         --lease_expired-->      enqueued
//! enqueued_for_orchestration          --complete-->           complete
//! enqueued_as_error_for_orchestration --wait_for_retry-->     waiting_for_retry
//! enqueued_as_error_for_orchestration --give_up-->            error
//! waiting_for_retry                   --retry-->              pending
//! error                               --reset_for_retry-->    pending
//!
//! # operator events: allowed from every non-terminal state
//! pending                             --cancel-->             cancelled
//! enqueued                            --cancel-->             cancelled
//! in_progress                         --cancel-->             cancelled
//! enqueued_for_orchestration          --cancel-->             cancelled
//! enqueued_as_error_for_orchestration --cancel-->             cancelled
//! waiting_for_retry                   --cancel-->             cancelled
//! error                               --cancel-->             cancelled
//! pending                             --resolve_manually-->   resolved_manually
//! enqueued                            --resolve_manually-->   resolved_manually
//! in_progress                         --resolve_manually-->   resolved_manually
//! enqueued_for_orchestration          --resolve_manually-->   resolved_manually
//! enqueued_as_error_for_orchestration --resolve_manually-->   resolved_manually
//! waiting_for_retry                   --resolve_manually-->   resolved_manually
//! error                               --resolve_manually-->   resolved_manually
//! pending                             --complete_manually-->  complete
//! enqueued                            --complete_manually-->  complete
//! in_progress                         --complete_manually-->  complete
//! enqueued_for_orchestration          --complete_manually-->  complete
//! enqueued_as_error_for_orchestration --complete_manually-->  complete
//! waiting_for_retry                   --complete_manually-->  complete
//! error                               --complete_manually-->  complete
//!
//! # the staleness sweep (dead-letter queue): a stuck step is failed and held
//! pending                             --dead_letter-->        error
//! enqueued                            --dead_letter-->        error
//! in_progress                         --dead_letter-->        error
//! enqueued_for_orchestration          --dead_letter-->        error
//! enqueued_as_error_for_orchestration --dead_letter-->        error
//! waiting_for_retry                   --dead_letter-->        error
//! ```
//!
//! Terminal states (nothing leaves them): `complete`, `cancelled`, `resolved_manually`.
//! `error` is *not* terminal for a step: an operator may `reset_for_retry` it.
//!
//! # Who fires which event
//!
//! - **TaskRequest** creates every step `pending` and enqueues the root steps (`enqueue`).
//! - The worker's **StepExecutor** claims a step: `enqueued --start--> in_progress`; a step
//!   in `waiting_for_retry` whose delay has passed is claimed in one go as
//!   `retry`, `enqueue`, `start` (→ `pending` → `enqueued` → `in_progress`).
//! - The **worker** writes the handler's result (`succeed` / `fail`) and the
//!   **ResultProcessor** applies it in the same transaction (`complete`, `wait_for_retry`
//!   or `give_up`). The worker can also `release` a step it will not run (no failure).
//! - The **StepEnqueuer**'s timed sweep returns steps whose lease expired
//!   (`lease_expired`; no attempt is burned).
//! - **Operators**: `reset_for_retry` (attempts reset), `resolve_manually`,
//!   `complete_manually`, `cancel`.

use super::{InvalidTransition, UnknownEvent, UnknownState};
use serde::{Deserialize, Serialize};

/// Where one step is in its life, stored by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Created, not yet handed to a worker: its dependencies may not be satisfied yet, or it
    /// came back from `waiting_for_retry` / an operator's `reset_for_retry`.
    /// Moved on by TaskRequest (root steps) or orchestration once its dependencies are
    /// satisfied (`enqueue`); a retried step is moved on by the StepExecutor's claim.
    Pending,
    /// Ready and waiting for a worker to claim it. Moved on by the StepExecutor's claim
    /// (`start`).
    Enqueued,
    /// Claimed by a worker under a lease; its handler is running. Moved on by the worker
    /// (`succeed`, `fail`, `release`) or by the StepEnqueuer's sweep when the lease expires
    /// (`lease_expired`, back to `enqueued` without burning an attempt).
    InProgress,
    /// The handler succeeded; the result awaits the ResultProcessor, which completes the
    /// step in the same transaction (`complete`).
    EnqueuedForOrchestration,
    /// The handler failed; the failure awaits the ResultProcessor, which in the same
    /// transaction schedules a retry (`wait_for_retry`) or gives up (`give_up`).
    EnqueuedAsErrorForOrchestration,
    /// Failed with attempts left; waits out its backoff delay. Moved on by the
    /// StepExecutor's claim once the delay has passed (`retry`, then `enqueue`, `start`).
    WaitingForRetry,
    /// Finished successfully (by its handler or an operator's `complete_manually`).
    /// Terminal; satisfies dependents.
    Complete,
    /// Failed permanently (attempts exhausted or the error was not retryable). Not
    /// terminal: only an operator moves it on (`reset_for_retry`, `resolve_manually`,
    /// `complete_manually`, `cancel`).
    Error,
    /// Cancelled by an operator. Terminal; does not satisfy dependents.
    Cancelled,
    /// Marked resolved by an operator without running to success. Terminal; satisfies
    /// dependents.
    ResolvedManually,
}

/// Something that happens to a step. Written to audit rows by its
/// [`as_str`](StepEvent::as_str) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepEvent {
    /// `pending → enqueued`: the step is ready for a worker (TaskRequest for root steps,
    /// orchestration for newly ready steps, the StepExecutor's claim for retried steps).
    Enqueue,
    /// `enqueued → in_progress`: the StepExecutor claimed the step and took a lease.
    Start,
    /// `in_progress → enqueued_for_orchestration`: the worker reports the handler succeeded.
    Succeed,
    /// `in_progress → enqueued_as_error_for_orchestration`: the worker reports the handler
    /// failed.
    Fail,
    /// `in_progress → enqueued`: the worker hands the step back without a failure (no
    /// attempt is burned).
    Release,
    /// `in_progress → enqueued`: the StepEnqueuer's sweep found the lease expired (no
    /// attempt is burned).
    LeaseExpired,
    /// `enqueued_for_orchestration → complete`: the ResultProcessor accepted a success.
    Complete,
    /// `enqueued_as_error_for_orchestration → waiting_for_retry`: the ResultProcessor
    /// scheduled another attempt after a backoff delay.
    WaitForRetry,
    /// `enqueued_as_error_for_orchestration → error`: the ResultProcessor found no attempts
    /// left (or a non-retryable error).
    GiveUp,
    /// `waiting_for_retry → pending`: the retry delay passed (first hop of the
    /// StepExecutor's claim of a retried step).
    Retry,
    /// `error → pending`: an operator asks for the step to run again, attempts reset.
    ResetForRetry,
    /// Any non-terminal state `→ cancelled`: an operator cancels the step.
    Cancel,
    /// Any non-terminal state `→ resolved_manually`: an operator resolves the step by hand.
    ResolveManually,
    /// Any non-terminal state `→ complete`: an operator marks the step complete.
    CompleteManually,
    /// Any non-terminal state but `error` `→ error`: the staleness sweep found the step
    /// stuck and recorded it in the dead-letter queue (a worker's late result then
    /// loses its compare-and-swap; an operator resolves the step).
    DeadLetter,
}

impl StepState {
    /// Every state, in declaration order.
    pub const ALL: [StepState; 10] = [
        Self::Pending,
        Self::Enqueued,
        Self::InProgress,
        Self::EnqueuedForOrchestration,
        Self::EnqueuedAsErrorForOrchestration,
        Self::WaitingForRetry,
        Self::Complete,
        Self::Error,
        Self::Cancelled,
        Self::ResolvedManually,
    ];

    /// The snake_case name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Enqueued => "enqueued",
            Self::InProgress => "in_progress",
            Self::EnqueuedForOrchestration => "enqueued_for_orchestration",
            Self::EnqueuedAsErrorForOrchestration => "enqueued_as_error_for_orchestration",
            Self::WaitingForRetry => "waiting_for_retry",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::ResolvedManually => "resolved_manually",
        }
    }

    /// complete, cancelled, resolved_manually.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Cancelled | Self::ResolvedManually)
    }

    /// complete or resolved_manually.
    pub fn satisfies_dependencies(self) -> bool {
        matches!(self, Self::Complete | Self::ResolvedManually)
    }

    /// Enqueued, running, or its result awaiting orchestration.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            Self::Enqueued | Self::InProgress | Self::EnqueuedForOrchestration | Self::EnqueuedAsErrorForOrchestration
        )
    }

    /// Applies one event: the state it leads to, or [`InvalidTransition`] naming the
    /// machine (`"step"`), this state and the event.
    pub fn apply(self, event: StepEvent) -> Result<StepState, InvalidTransition> {
        use StepEvent as E;
        use StepState as S;
        let to = match (self, event) {
            (S::Pending, E::Enqueue) => S::Enqueued,
            (S::Enqueued, E::Start) => S::InProgress,
            (S::InProgress, E::Succeed) => S::EnqueuedForOrchestration,
            (S::InProgress, E::Fail) => S::EnqueuedAsErrorForOrchestration,
            (S::InProgress, E::Release | E::LeaseExpired) => S::Enqueued,
            (S::EnqueuedForOrchestration, E::Complete) => S::Complete,
            (S::EnqueuedAsErrorForOrchestration, E::WaitForRetry) => S::WaitingForRetry,
            (S::EnqueuedAsErrorForOrchestration, E::GiveUp) => S::Error,
            (S::WaitingForRetry, E::Retry) => S::Pending,
            (S::Error, E::ResetForRetry) => S::Pending,
            (s, E::Cancel) if !s.is_terminal() => S::Cancelled,
            (s, E::ResolveManually) if !s.is_terminal() => S::ResolvedManually,
            (s, E::CompleteManually) if !s.is_terminal() => S::Complete,
            (s, E::DeadLetter) if !s.is_terminal() && s != S::Error => S::Error,
            _ => {
                return Err(InvalidTransition {
                    machine: "step",
                    from: self.as_str(),
                    event: event.as_str(),
                })
            }
        };
        Ok(to)
    }

    /// Applies events in order, returning each hop's event and resulting state; stops at
    /// the first illegal event and returns its [`InvalidTransition`] (no partial result).
    pub fn walk(self, events: &[StepEvent]) -> Result<Vec<(StepEvent, StepState)>, InvalidTransition> {
        let mut at = self;
        let mut hops = Vec::with_capacity(events.len());
        for &e in events {
            at = at.apply(e)?;
            hops.push((e, at));
        }
        Ok(hops)
    }
}

impl StepEvent {
    /// Every event, in declaration order.
    pub const ALL: [StepEvent; 15] = [
        Self::Enqueue,
        Self::Start,
        Self::Succeed,
        Self::Fail,
        Self::Release,
        Self::LeaseExpired,
        Self::Complete,
        Self::WaitForRetry,
        Self::GiveUp,
        Self::Retry,
        Self::ResetForRetry,
        Self::Cancel,
        Self::ResolveManually,
        Self::CompleteManually,
        Self::DeadLetter,
    ];

    /// The snake_case name written to audit rows.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enqueue => "enqueue",
            Self::Start => "start",
            Self::Succeed => "succeed",
            Self::Fail => "fail",
            Self::Release => "release",
            Self::LeaseExpired => "lease_expired",
            Self::Complete => "complete",
            Self::WaitForRetry => "wait_for_retry",
            Self::GiveUp => "give_up",
            Self::Retry => "retry",
            Self::ResetForRetry => "reset_for_retry",
            Self::Cancel => "cancel",
            Self::ResolveManually => "resolve_manually",
            Self::CompleteManually => "complete_manually",
            Self::DeadLetter => "dead_letter",
        }
    }
}

impl std::str::FromStr for StepState {
    type Err = UnknownState;

    /// Parses an [`as_str`](StepState::as_str) name (exact, case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownState {
                machine: "step",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for StepState {
    /// Writes the [`as_str`](StepState::as_str) name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StepEvent {
    type Err = UnknownEvent;

    /// Parses an [`as_str`](StepEvent::as_str) name (exact, case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownEvent {
                machine: "step",
                value: s.to_string(),
            })
    }
}

impl std::fmt::Display for StepEvent {
    /// Writes the [`as_str`](StepEvent::as_str) name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
