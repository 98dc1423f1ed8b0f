//! Task state machine (stub: being written).

use super::{InvalidTransition, StepState, UnknownState};
use serde::{Deserialize, Serialize};

/// Task states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TaskState { Pending, Initializing, EnqueuingSteps, StepsInProcess, EvaluatingResults, WaitingForDependencies, WaitingForRetry, BlockedByFailures, Complete, Error, Cancelled, ResolvedManually }

/// Task events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TaskEvent { Start, ReadyStepsFound, NoStepsFound, NoDependenciesReady, StepsEnqueued, EnqueueFailed, ResultsReceived, AllStepsSuccessful, StepsStillRunning, AwaitingRetry, PermanentFailure, DependenciesReady, RetryReady, GiveUp, ManualResolution, Reopen, Cancel }

impl TaskState {
    /// Every state.
    pub const ALL: [TaskState; 12] = [Self::Pending, Self::Initializing, Self::EnqueuingSteps, Self::StepsInProcess, Self::EvaluatingResults, Self::WaitingForDependencies, Self::WaitingForRetry, Self::BlockedByFailures, Self::Complete, Self::Error, Self::Cancelled, Self::ResolvedManually];
    /// The snake_case name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self { Self::Pending => "pending", Self::Initializing => "initializing", Self::EnqueuingSteps => "enqueuing_steps", Self::StepsInProcess => "steps_in_process", Self::EvaluatingResults => "evaluating_results", Self::WaitingForDependencies => "waiting_for_dependencies", Self::WaitingForRetry => "waiting_for_retry", Self::BlockedByFailures => "blocked_by_failures", Self::Complete => "complete", Self::Error => "error", Self::Cancelled => "cancelled", Self::ResolvedManually => "resolved_manually" }
    }
    /// complete, error, cancelled, resolved_manually.
    pub fn is_terminal(self) -> bool { matches!(self, Self::Complete | Self::Error | Self::Cancelled | Self::ResolvedManually) }
    /// Applies one event.
    pub fn apply(self, event: TaskEvent) -> Result<TaskState, InvalidTransition> {
        use TaskEvent as E; use TaskState as S;
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
            _ => return Err(InvalidTransition { machine: "task", from: self.as_str(), event: event.as_str() }),
        };
        Ok(to)
    }
    /// Applies events in order, returning each hop's event and resulting state.
    pub fn walk(self, events: &[TaskEvent]) -> Result<Vec<(TaskEvent, TaskState)>, InvalidTransition> {
        let mut at = self; let mut hops = Vec::with_capacity(events.len());
        for &e in events { at = at.apply(e)?; hops.push((e, at)); }
        Ok(hops)
    }
}

impl TaskEvent {
    /// The snake_case name written to audit rows.
    pub const fn as_str(self) -> &'static str {
        match self { Self::Start => "start", Self::ReadyStepsFound => "ready_steps_found", Self::NoStepsFound => "no_steps_found", Self::NoDependenciesReady => "no_dependencies_ready", Self::StepsEnqueued => "steps_enqueued", Self::EnqueueFailed => "enqueue_failed", Self::ResultsReceived => "results_received", Self::AllStepsSuccessful => "all_steps_successful", Self::StepsStillRunning => "steps_still_running", Self::AwaitingRetry => "awaiting_retry", Self::PermanentFailure => "permanent_failure", Self::DependenciesReady => "dependencies_ready", Self::RetryReady => "retry_ready", Self::GiveUp => "give_up", Self::ManualResolution => "manual_resolution", Self::Reopen => "reopen", Self::Cancel => "cancel" }
    }
}

impl std::str::FromStr for TaskState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| UnknownState { machine: "task", value: s.to_string() })
    }
}
impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
}

/// How many of a task's steps are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepCounts {
    counts: [u32; 10],
}

impl StepCounts {
    /// Adds `n` steps in `state`.
    pub fn add(&mut self, state: StepState, n: u32) { self.counts[state as usize] += n; }
    /// Steps in `state`.
    pub fn get(&self, state: StepState) -> u32 { self.counts[state as usize] }
    /// All steps.
    pub fn total(&self) -> u32 { self.counts.iter().sum() }
}

/// What a task's step counts say about the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Every step complete or resolved manually.
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

/// Judges a task by its step counts (rules in order: all satisfied → AllComplete;
/// a failed or cancelled step and nothing in flight → Blocked; anything in flight → Running;
/// a step waiting for retry → AwaitingRetry; otherwise WaitingForDependencies).
pub fn evaluate(c: &StepCounts) -> Evaluation {
    let satisfied = c.get(StepState::Complete) + c.get(StepState::ResolvedManually);
    let in_flight: u32 = StepState::ALL.into_iter().filter(|s| s.is_in_flight()).map(|s| c.get(s)).sum();
    let failed = c.get(StepState::Error) + c.get(StepState::Cancelled);
    if satisfied == c.total() { Evaluation::AllComplete }
    else if failed > 0 && in_flight == 0 { Evaluation::Blocked }
    else if in_flight > 0 { Evaluation::Running }
    else if c.get(StepState::WaitingForRetry) > 0 { Evaluation::AwaitingRetry }
    else { Evaluation::WaitingForDependencies }
}

/// The events that take a task from `from` to where `evaluation` calls for, after a batch
/// of step results was applied. Empty when nothing changes (a task already terminal, or a
/// task in `steps_in_process` whose steps are still running with none newly enqueued: no
/// audit rows are written for evaluations that change nothing).
pub fn events_after_evaluation(from: TaskState, evaluation: Evaluation, newly_enqueued: bool, hold_failed: bool) -> Vec<TaskEvent> {
    use TaskEvent as E;
    if from.is_terminal() { return vec![]; }
    if from == TaskState::StepsInProcess && evaluation == Evaluation::Running && !newly_enqueued { return vec![]; }
    let mut events = match from {
        TaskState::StepsInProcess | TaskState::WaitingForRetry => vec![E::ResultsReceived],
        TaskState::WaitingForDependencies => vec![E::DependenciesReady],
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
        Evaluation::Blocked => { events.push(E::PermanentFailure); if !hold_failed { events.push(E::GiveUp); } }
    }
    events
}
