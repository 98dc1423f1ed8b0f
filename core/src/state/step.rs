//! Step state machine (stub: being written).

use super::{InvalidTransition, UnknownState};
use serde::{Deserialize, Serialize};

/// Step states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StepState { Pending, Enqueued, InProgress, EnqueuedForOrchestration, EnqueuedAsErrorForOrchestration, WaitingForRetry, Complete, Error, Cancelled, ResolvedManually }

/// Step events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StepEvent { Enqueue, Start, Succeed, Fail, Release, LeaseExpired, Complete, WaitForRetry, GiveUp, Retry, ResetForRetry, Cancel, ResolveManually, CompleteManually }

impl StepState {
    /// Every state, in declaration order.
    pub const ALL: [StepState; 10] = [Self::Pending, Self::Enqueued, Self::InProgress, Self::EnqueuedForOrchestration, Self::EnqueuedAsErrorForOrchestration, Self::WaitingForRetry, Self::Complete, Self::Error, Self::Cancelled, Self::ResolvedManually];
    /// The snake_case name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self { Self::Pending => "pending", Self::Enqueued => "enqueued", Self::InProgress => "in_progress", Self::EnqueuedForOrchestration => "enqueued_for_orchestration", Self::EnqueuedAsErrorForOrchestration => "enqueued_as_error_for_orchestration", Self::WaitingForRetry => "waiting_for_retry", Self::Complete => "complete", Self::Error => "error", Self::Cancelled => "cancelled", Self::ResolvedManually => "resolved_manually" }
    }
    /// complete, cancelled, resolved_manually.
    pub fn is_terminal(self) -> bool { matches!(self, Self::Complete | Self::Cancelled | Self::ResolvedManually) }
    /// complete or resolved_manually.
    pub fn satisfies_dependencies(self) -> bool { matches!(self, Self::Complete | Self::ResolvedManually) }
    /// Enqueued, running, or its result awaiting orchestration.
    pub fn is_in_flight(self) -> bool { matches!(self, Self::Enqueued | Self::InProgress | Self::EnqueuedForOrchestration | Self::EnqueuedAsErrorForOrchestration) }
    /// Applies one event.
    pub fn apply(self, event: StepEvent) -> Result<StepState, InvalidTransition> {
        use StepEvent as E; use StepState as S;
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
            _ => return Err(InvalidTransition { machine: "step", from: self.as_str(), event: event.as_str() }),
        };
        Ok(to)
    }
    /// Applies events in order, returning each hop's event and resulting state.
    pub fn walk(self, events: &[StepEvent]) -> Result<Vec<(StepEvent, StepState)>, InvalidTransition> {
        let mut at = self; let mut hops = Vec::with_capacity(events.len());
        for &e in events { at = at.apply(e)?; hops.push((e, at)); }
        Ok(hops)
    }
}

impl StepEvent {
    /// The snake_case name written to audit rows.
    pub const fn as_str(self) -> &'static str {
        match self { Self::Enqueue => "enqueue", Self::Start => "start", Self::Succeed => "succeed", Self::Fail => "fail", Self::Release => "release", Self::LeaseExpired => "lease_expired", Self::Complete => "complete", Self::WaitForRetry => "wait_for_retry", Self::GiveUp => "give_up", Self::Retry => "retry", Self::ResetForRetry => "reset_for_retry", Self::Cancel => "cancel", Self::ResolveManually => "resolve_manually", Self::CompleteManually => "complete_manually" }
    }
}

impl std::str::FromStr for StepState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| UnknownState { machine: "step", value: s.to_string() })
    }
}
impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
}
