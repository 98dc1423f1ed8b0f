//! Exhaustive tests of the task state machine, the step-count evaluation and
//! `events_after_evaluation`, against independently written expectations.

use super::step::StepState;
use super::step_tests::{header_edges, mermaid_edges};
use super::task::{evaluate, events_after_evaluation, Evaluation, StepCounts, TaskEvent, TaskState};
use super::{InvalidTransition, UnknownEvent, UnknownState};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use TaskEvent as E;
use TaskState as S;

/// The legal edges, written out by hand (not derived from `apply`).
const EDGES: &[(TaskState, TaskEvent, TaskState)] = &[
    (S::Pending, E::Start, S::Initializing),
    (S::Initializing, E::ReadyStepsFound, S::EnqueuingSteps),
    (S::Initializing, E::NoStepsFound, S::Complete),
    (S::Initializing, E::NoDependenciesReady, S::WaitingForDependencies),
    (S::EnqueuingSteps, E::StepsEnqueued, S::StepsInProcess),
    (S::EnqueuingSteps, E::EnqueueFailed, S::Error),
    (S::StepsInProcess, E::ResultsReceived, S::EvaluatingResults),
    (S::EvaluatingResults, E::AllStepsSuccessful, S::Complete),
    (S::EvaluatingResults, E::ReadyStepsFound, S::EnqueuingSteps),
    (S::EvaluatingResults, E::StepsStillRunning, S::StepsInProcess),
    (S::EvaluatingResults, E::AwaitingRetry, S::WaitingForRetry),
    (S::EvaluatingResults, E::NoDependenciesReady, S::WaitingForDependencies),
    (S::EvaluatingResults, E::PermanentFailure, S::BlockedByFailures),
    (S::WaitingForDependencies, E::DependenciesReady, S::EvaluatingResults),
    (S::WaitingForRetry, E::RetryReady, S::EnqueuingSteps),
    (S::WaitingForRetry, E::ResultsReceived, S::EvaluatingResults),
    (S::BlockedByFailures, E::GiveUp, S::Error),
    (S::BlockedByFailures, E::ManualResolution, S::ResolvedManually),
    (S::BlockedByFailures, E::Reopen, S::EvaluatingResults),
    (S::Error, E::Reopen, S::EvaluatingResults),
    // cancel
    (S::Pending, E::Cancel, S::Cancelled),
    (S::Initializing, E::Cancel, S::Cancelled),
    (S::EnqueuingSteps, E::Cancel, S::Cancelled),
    (S::StepsInProcess, E::Cancel, S::Cancelled),
    (S::EvaluatingResults, E::Cancel, S::Cancelled),
    (S::WaitingForDependencies, E::Cancel, S::Cancelled),
    (S::WaitingForRetry, E::Cancel, S::Cancelled),
    (S::BlockedByFailures, E::Cancel, S::Cancelled),
    // dead_letter (the staleness sweep)
    (S::Pending, E::DeadLetter, S::BlockedByFailures),
    (S::Initializing, E::DeadLetter, S::BlockedByFailures),
    (S::EnqueuingSteps, E::DeadLetter, S::BlockedByFailures),
    (S::StepsInProcess, E::DeadLetter, S::BlockedByFailures),
    (S::EvaluatingResults, E::DeadLetter, S::BlockedByFailures),
    (S::WaitingForDependencies, E::DeadLetter, S::BlockedByFailures),
    (S::WaitingForRetry, E::DeadLetter, S::BlockedByFailures),
];

const STATE_NAMES: &[(TaskState, &str)] = &[
    (S::Pending, "pending"),
    (S::Initializing, "initializing"),
    (S::EnqueuingSteps, "enqueuing_steps"),
    (S::StepsInProcess, "steps_in_process"),
    (S::EvaluatingResults, "evaluating_results"),
    (S::WaitingForDependencies, "waiting_for_dependencies"),
    (S::WaitingForRetry, "waiting_for_retry"),
    (S::BlockedByFailures, "blocked_by_failures"),
    (S::Complete, "complete"),
    (S::Error, "error"),
    (S::Cancelled, "cancelled"),
    (S::ResolvedManually, "resolved_manually"),
];

const EVENT_NAMES: &[(TaskEvent, &str)] = &[
    (E::Start, "start"),
    (E::ReadyStepsFound, "ready_steps_found"),
    (E::NoStepsFound, "no_steps_found"),
    (E::NoDependenciesReady, "no_dependencies_ready"),
    (E::StepsEnqueued, "steps_enqueued"),
    (E::EnqueueFailed, "enqueue_failed"),
    (E::ResultsReceived, "results_received"),
    (E::AllStepsSuccessful, "all_steps_successful"),
    (E::StepsStillRunning, "steps_still_running"),
    (E::AwaitingRetry, "awaiting_retry"),
    (E::PermanentFailure, "permanent_failure"),
    (E::DependenciesReady, "dependencies_ready"),
    (E::RetryReady, "retry_ready"),
    (E::GiveUp, "give_up"),
    (E::ManualResolution, "manual_resolution"),
    (E::Reopen, "reopen"),
    (E::Cancel, "cancel"),
    (E::DeadLetter, "dead_letter"),
];

const EVALUATIONS: [Evaluation; 5] = [
    Evaluation::AllComplete,
    Evaluation::Running,
    Evaluation::AwaitingRetry,
    Evaluation::WaitingForDependencies,
    Evaluation::Blocked,
];

/// Exhaustive matches: adding a variant without updating the tests fails to compile.
fn state_index(s: TaskState) -> usize {
    match s {
        S::Pending => 0,
        S::Initializing => 1,
        S::EnqueuingSteps => 2,
        S::StepsInProcess => 3,
        S::EvaluatingResults => 4,
        S::WaitingForDependencies => 5,
        S::WaitingForRetry => 6,
        S::BlockedByFailures => 7,
        S::Complete => 8,
        S::Error => 9,
        S::Cancelled => 10,
        S::ResolvedManually => 11,
    }
}

fn event_index(e: TaskEvent) -> usize {
    match e {
        E::Start => 0,
        E::ReadyStepsFound => 1,
        E::NoStepsFound => 2,
        E::NoDependenciesReady => 3,
        E::StepsEnqueued => 4,
        E::EnqueueFailed => 5,
        E::ResultsReceived => 6,
        E::AllStepsSuccessful => 7,
        E::StepsStillRunning => 8,
        E::AwaitingRetry => 9,
        E::PermanentFailure => 10,
        E::DependenciesReady => 11,
        E::RetryReady => 12,
        E::GiveUp => 13,
        E::ManualResolution => 14,
        E::Reopen => 15,
        E::Cancel => 16,
        E::DeadLetter => 17,
    }
}

fn evaluation_index(e: Evaluation) -> usize {
    match e {
        Evaluation::AllComplete => 0,
        Evaluation::Running => 1,
        Evaluation::AwaitingRetry => 2,
        Evaluation::WaitingForDependencies => 3,
        Evaluation::Blocked => 4,
    }
}

fn expected() -> HashMap<(TaskState, TaskEvent), TaskState> {
    let mut m = HashMap::new();
    for &(from, ev, to) in EDGES {
        assert!(m.insert((from, ev), to).is_none(), "duplicate edge {from} --{ev}-->");
    }
    m
}

fn edge_set() -> BTreeSet<(String, String, String)> {
    EDGES
        .iter()
        .map(|(f, e, t)| (f.to_string(), e.to_string(), t.to_string()))
        .collect()
}

// ---------------------------------------------------------------- transition table

#[test]
fn all_arrays_hold_every_variant_once() {
    let states: HashSet<usize> = S::ALL.iter().map(|&s| state_index(s)).collect();
    assert_eq!(states, (0..12).collect::<HashSet<_>>());
    let events: HashSet<usize> = E::ALL.iter().map(|&e| event_index(e)).collect();
    assert_eq!(events, (0..18).collect::<HashSet<_>>());
    let evals: HashSet<usize> = EVALUATIONS.iter().map(|&e| evaluation_index(e)).collect();
    assert_eq!(evals, (0..5).collect::<HashSet<_>>());
    assert_eq!(STATE_NAMES.len(), S::ALL.len());
    assert_eq!(EVENT_NAMES.len(), E::ALL.len());
}

#[test]
fn every_state_event_pair_matches_the_expected_table() {
    let table = expected();
    assert_eq!(table.len(), 35);
    let mut legal = 0;
    for from in S::ALL {
        for ev in E::ALL {
            let got = from.apply(ev);
            match table.get(&(from, ev)) {
                Some(&to) => {
                    legal += 1;
                    assert_eq!(got, Ok(to), "{from} --{ev}-->");
                }
                None => {
                    let err = got.expect_err(&format!("{from} --{ev}--> should be illegal"));
                    assert_eq!(
                        err,
                        InvalidTransition {
                            machine: "task",
                            from: from.as_str(),
                            event: ev.as_str(),
                        }
                    );
                    assert_eq!(
                        err.to_string(),
                        format!("invalid task transition: `{ev}` is not allowed from `{from}`")
                    );
                }
            }
        }
    }
    assert_eq!(legal, 35);
}

#[test]
fn state_names_round_trip() {
    for &(s, name) in STATE_NAMES {
        assert_eq!(s.as_str(), name);
        assert_eq!(s.to_string(), name);
        assert_eq!(TaskState::from_str(name), Ok(s));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), s);
    }
}

#[test]
fn event_names_round_trip() {
    for &(e, name) in EVENT_NAMES {
        assert_eq!(e.as_str(), name);
        assert_eq!(e.to_string(), name);
        assert_eq!(TaskEvent::from_str(name), Ok(e));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<TaskEvent>(&json).unwrap(), e);
    }
}

#[test]
fn unknown_names_are_rejected() {
    for bad in [
        "",
        "Pending",
        "COMPLETE",
        "steps-in-process",
        "StepsInProcess",
        "blocked",
        "in_progress",
    ] {
        let err = TaskState::from_str(bad).unwrap_err();
        assert_eq!(
            err,
            UnknownState {
                machine: "task",
                value: bad.to_string()
            }
        );
        assert_eq!(err.to_string(), format!("unknown task state `{bad}`"));
        assert!(serde_json::from_str::<TaskState>(&format!("\"{bad}\"")).is_err());
    }
    for bad in [
        "",
        "Start",
        "REOPEN",
        "results-received",
        "ResultsReceived",
        "enqueue",
        "retry",
    ] {
        let err = TaskEvent::from_str(bad).unwrap_err();
        assert_eq!(
            err,
            UnknownEvent {
                machine: "task",
                value: bad.to_string()
            }
        );
        assert_eq!(err.to_string(), format!("unknown task event `{bad}`"));
        assert!(serde_json::from_str::<TaskEvent>(&format!("\"{bad}\"")).is_err());
    }
}

#[test]
fn terminal_states_accept_only_reopen_from_error() {
    let terminal = [S::Complete, S::Error, S::Cancelled, S::ResolvedManually];
    for s in S::ALL {
        assert_eq!(s.is_terminal(), terminal.contains(&s), "{s}");
    }
    for s in terminal {
        for e in E::ALL {
            let want = if (s, e) == (S::Error, E::Reopen) {
                Ok(S::EvaluatingResults)
            } else {
                Err(InvalidTransition {
                    machine: "task",
                    from: s.as_str(),
                    event: e.as_str(),
                })
            };
            assert_eq!(s.apply(e), want, "{s} --{e}-->");
        }
    }
    for s in S::ALL.into_iter().filter(|s| !s.is_terminal()) {
        assert_eq!(s.apply(E::Cancel), Ok(S::Cancelled), "{s}");
    }
}

#[test]
fn walk_returns_every_hop() {
    let events = [
        E::Start,
        E::ReadyStepsFound,
        E::StepsEnqueued,
        E::ResultsReceived,
        E::AwaitingRetry,
        E::ResultsReceived,
        E::PermanentFailure,
        E::Reopen,
        E::AllStepsSuccessful,
    ];
    assert_eq!(
        S::Pending.walk(&events),
        Ok(vec![
            (E::Start, S::Initializing),
            (E::ReadyStepsFound, S::EnqueuingSteps),
            (E::StepsEnqueued, S::StepsInProcess),
            (E::ResultsReceived, S::EvaluatingResults),
            (E::AwaitingRetry, S::WaitingForRetry),
            (E::ResultsReceived, S::EvaluatingResults),
            (E::PermanentFailure, S::BlockedByFailures),
            (E::Reopen, S::EvaluatingResults),
            (E::AllStepsSuccessful, S::Complete),
        ])
    );
    assert_eq!(S::Complete.walk(&[]), Ok(vec![]));
}

#[test]
fn walk_stops_at_the_first_illegal_event() {
    assert_eq!(
        S::Pending.walk(&[E::Start, E::StepsEnqueued, E::Cancel, E::Reopen]),
        Err(InvalidTransition {
            machine: "task",
            from: "initializing",
            event: "steps_enqueued"
        })
    );
    assert_eq!(
        S::Error.walk(&[E::Reopen, E::GiveUp, E::Start]),
        Err(InvalidTransition {
            machine: "task",
            from: "evaluating_results",
            event: "give_up"
        })
    );
}

#[test]
fn walk_agrees_with_apply_for_every_two_event_sequence() {
    let table = expected();
    for from in S::ALL {
        for a in E::ALL {
            for b in E::ALL {
                let want = match table.get(&(from, a)) {
                    None => Err(InvalidTransition {
                        machine: "task",
                        from: from.as_str(),
                        event: a.as_str(),
                    }),
                    Some(&mid) => match table.get(&(mid, b)) {
                        None => Err(InvalidTransition {
                            machine: "task",
                            from: mid.as_str(),
                            event: b.as_str(),
                        }),
                        Some(&to) => Ok(vec![(a, mid), (b, to)]),
                    },
                };
                assert_eq!(from.walk(&[a, b]), want, "{from} {a} {b}");
            }
        }
    }
}

#[test]
fn docs_diagram_matches_the_table() {
    assert_eq!(mermaid_edges(1), edge_set());
}

#[test]
fn header_comment_matches_the_table() {
    assert_eq!(header_edges(include_str!("task.rs")), edge_set());
}

// ---------------------------------------------------------------- evaluation

fn counts(pairs: &[(StepState, u32)]) -> StepCounts {
    let mut c = StepCounts::default();
    for &(s, n) in pairs {
        c.add(s, n);
    }
    c
}

#[test]
fn step_counts_add_get_total() {
    let mut c = StepCounts::default();
    assert_eq!(c.total(), 0);
    for (i, s) in StepState::ALL.into_iter().enumerate() {
        c.add(s, i as u32 + 1);
    }
    c.add(StepState::Error, 5);
    for (i, s) in StepState::ALL.into_iter().enumerate() {
        let extra = if s == StepState::Error { 5 } else { 0 };
        assert_eq!(c.get(s), i as u32 + 1 + extra, "{s}");
    }
    assert_eq!(c.total(), 55 + 5);
}

#[test]
fn evaluate_each_rule_and_priority() {
    use Evaluation as V;
    use StepState as St;
    let cases: &[(&[(StepState, u32)], Evaluation)] = &[
        // rule 1: all satisfied (vacuously with no steps)
        (&[], V::AllComplete),
        (&[(St::Complete, 3)], V::AllComplete),
        (&[(St::ResolvedManually, 1)], V::AllComplete),
        (&[(St::Complete, 2), (St::ResolvedManually, 1)], V::AllComplete),
        // rule 2: failed and nothing in flight beats retry / pending
        (&[(St::Error, 1)], V::Blocked),
        (&[(St::Cancelled, 1)], V::Blocked),
        (&[(St::Error, 1), (St::Complete, 4)], V::Blocked),
        (&[(St::Error, 1), (St::WaitingForRetry, 2)], V::Blocked),
        (&[(St::Cancelled, 1), (St::Pending, 2)], V::Blocked),
        (
            &[(St::Error, 1), (St::WaitingForRetry, 1), (St::Pending, 1)],
            V::Blocked,
        ),
        // rule 3: in flight beats failed
        (&[(St::Error, 1), (St::InProgress, 1)], V::Running),
        (&[(St::Cancelled, 1), (St::Enqueued, 1)], V::Running),
        (&[(St::Error, 1), (St::EnqueuedAsErrorForOrchestration, 1)], V::Running),
        (&[(St::Enqueued, 1)], V::Running),
        (&[(St::InProgress, 1)], V::Running),
        (&[(St::EnqueuedForOrchestration, 1)], V::Running),
        (&[(St::EnqueuedAsErrorForOrchestration, 1)], V::Running),
        (
            &[(St::InProgress, 1), (St::WaitingForRetry, 1), (St::Pending, 1)],
            V::Running,
        ),
        (&[(St::InProgress, 1), (St::Complete, 9)], V::Running),
        // rule 4: waiting for retry beats pending
        (&[(St::WaitingForRetry, 1)], V::AwaitingRetry),
        (
            &[(St::WaitingForRetry, 1), (St::Pending, 3), (St::Complete, 1)],
            V::AwaitingRetry,
        ),
        // rule 5: only pending left
        (&[(St::Pending, 1)], V::WaitingForDependencies),
        (
            &[(St::Pending, 2), (St::Complete, 1), (St::ResolvedManually, 1)],
            V::WaitingForDependencies,
        ),
        // zero counts are ignored
        (&[(St::Error, 0), (St::InProgress, 0)], V::AllComplete),
    ];
    for (pairs, want) in cases {
        assert_eq!(evaluate(&counts(pairs)), *want, "{pairs:?}");
    }
}

/// The rules written a second way: from presence flags, in the documented order.
fn reference_evaluate(present: &dyn Fn(StepState) -> bool) -> Evaluation {
    use StepState as St;
    let any = |ss: &[StepState]| ss.iter().any(|&s| present(s));
    let unsatisfied = [
        St::Pending,
        St::Enqueued,
        St::InProgress,
        St::EnqueuedForOrchestration,
        St::EnqueuedAsErrorForOrchestration,
        St::WaitingForRetry,
        St::Error,
        St::Cancelled,
    ];
    let in_flight = [
        St::Enqueued,
        St::InProgress,
        St::EnqueuedForOrchestration,
        St::EnqueuedAsErrorForOrchestration,
    ];
    if !any(&unsatisfied) {
        Evaluation::AllComplete
    } else if any(&[St::Error, St::Cancelled]) && !any(&in_flight) {
        Evaluation::Blocked
    } else if any(&in_flight) {
        Evaluation::Running
    } else if present(St::WaitingForRetry) {
        Evaluation::AwaitingRetry
    } else {
        Evaluation::WaitingForDependencies
    }
}

#[test]
fn evaluate_matches_reference_for_every_mix_of_states() {
    for mask in 0u32..(1 << 10) {
        for n in [1, 3] {
            let mut c = StepCounts::default();
            for (i, s) in StepState::ALL.into_iter().enumerate() {
                if mask & (1 << i) != 0 {
                    c.add(s, n);
                }
            }
            let present = |s: StepState| {
                let i = StepState::ALL.iter().position(|&x| x == s).unwrap();
                mask & (1 << i) != 0
            };
            assert_eq!(evaluate(&c), reference_evaluate(&present), "mask {mask:010b}");
        }
    }
}

// ---------------------------------------------------------------- events_after_evaluation

#[test]
fn events_after_evaluation_cases() {
    use Evaluation as V;
    // (from, evaluation, newly_enqueued, hold_failed, events)
    let cases: &[(TaskState, Evaluation, bool, bool, &[TaskEvent])] = &[
        // steps_in_process
        (
            S::StepsInProcess,
            V::AllComplete,
            false,
            false,
            &[E::ResultsReceived, E::AllStepsSuccessful],
        ),
        (
            S::StepsInProcess,
            V::Running,
            true,
            false,
            &[E::ResultsReceived, E::ReadyStepsFound, E::StepsEnqueued],
        ),
        (S::StepsInProcess, V::Running, false, false, &[]),
        (
            S::StepsInProcess,
            V::AwaitingRetry,
            false,
            false,
            &[E::ResultsReceived, E::AwaitingRetry],
        ),
        (
            S::StepsInProcess,
            V::WaitingForDependencies,
            false,
            false,
            &[E::ResultsReceived, E::NoDependenciesReady],
        ),
        (
            S::StepsInProcess,
            V::Blocked,
            false,
            false,
            &[E::ResultsReceived, E::PermanentFailure, E::GiveUp],
        ),
        (
            S::StepsInProcess,
            V::Blocked,
            false,
            true,
            &[E::ResultsReceived, E::PermanentFailure],
        ),
        // waiting_for_retry
        (
            S::WaitingForRetry,
            V::AllComplete,
            false,
            false,
            &[E::ResultsReceived, E::AllStepsSuccessful],
        ),
        (
            S::WaitingForRetry,
            V::Running,
            true,
            false,
            &[E::ResultsReceived, E::ReadyStepsFound, E::StepsEnqueued],
        ),
        (
            S::WaitingForRetry,
            V::Running,
            false,
            false,
            &[E::ResultsReceived, E::StepsStillRunning],
        ),
        (
            S::WaitingForRetry,
            V::AwaitingRetry,
            false,
            false,
            &[E::ResultsReceived, E::AwaitingRetry],
        ),
        (
            S::WaitingForRetry,
            V::WaitingForDependencies,
            false,
            false,
            &[E::ResultsReceived, E::NoDependenciesReady],
        ),
        (
            S::WaitingForRetry,
            V::Blocked,
            false,
            false,
            &[E::ResultsReceived, E::PermanentFailure, E::GiveUp],
        ),
        (
            S::WaitingForRetry,
            V::Blocked,
            false,
            true,
            &[E::ResultsReceived, E::PermanentFailure],
        ),
        // waiting_for_dependencies
        (
            S::WaitingForDependencies,
            V::AllComplete,
            false,
            false,
            &[E::DependenciesReady, E::AllStepsSuccessful],
        ),
        (
            S::WaitingForDependencies,
            V::Running,
            true,
            false,
            &[E::DependenciesReady, E::ReadyStepsFound, E::StepsEnqueued],
        ),
        (
            S::WaitingForDependencies,
            V::Running,
            false,
            false,
            &[E::DependenciesReady, E::StepsStillRunning],
        ),
        (
            S::WaitingForDependencies,
            V::AwaitingRetry,
            false,
            false,
            &[E::DependenciesReady, E::AwaitingRetry],
        ),
        (
            S::WaitingForDependencies,
            V::WaitingForDependencies,
            false,
            false,
            &[E::DependenciesReady, E::NoDependenciesReady],
        ),
        (
            S::WaitingForDependencies,
            V::Blocked,
            false,
            false,
            &[E::DependenciesReady, E::PermanentFailure, E::GiveUp],
        ),
        (
            S::WaitingForDependencies,
            V::Blocked,
            false,
            true,
            &[E::DependenciesReady, E::PermanentFailure],
        ),
        // blocked_by_failures
        (
            S::BlockedByFailures,
            V::AllComplete,
            false,
            true,
            &[E::Reopen, E::AllStepsSuccessful],
        ),
        (
            S::BlockedByFailures,
            V::Running,
            true,
            true,
            &[E::Reopen, E::ReadyStepsFound, E::StepsEnqueued],
        ),
        (
            S::BlockedByFailures,
            V::Running,
            false,
            true,
            &[E::Reopen, E::StepsStillRunning],
        ),
        (
            S::BlockedByFailures,
            V::AwaitingRetry,
            false,
            true,
            &[E::Reopen, E::AwaitingRetry],
        ),
        (
            S::BlockedByFailures,
            V::WaitingForDependencies,
            false,
            true,
            &[E::Reopen, E::NoDependenciesReady],
        ),
        (
            S::BlockedByFailures,
            V::Blocked,
            false,
            false,
            &[E::Reopen, E::PermanentFailure, E::GiveUp],
        ),
        (
            S::BlockedByFailures,
            V::Blocked,
            false,
            true,
            &[E::Reopen, E::PermanentFailure],
        ),
        // evaluating_results
        (
            S::EvaluatingResults,
            V::AllComplete,
            false,
            false,
            &[E::AllStepsSuccessful],
        ),
        (
            S::EvaluatingResults,
            V::Running,
            true,
            false,
            &[E::ReadyStepsFound, E::StepsEnqueued],
        ),
        (S::EvaluatingResults, V::Running, false, false, &[E::StepsStillRunning]),
        (
            S::EvaluatingResults,
            V::AwaitingRetry,
            false,
            false,
            &[E::AwaitingRetry],
        ),
        (
            S::EvaluatingResults,
            V::WaitingForDependencies,
            false,
            false,
            &[E::NoDependenciesReady],
        ),
        (
            S::EvaluatingResults,
            V::Blocked,
            false,
            false,
            &[E::PermanentFailure, E::GiveUp],
        ),
        (S::EvaluatingResults, V::Blocked, false, true, &[E::PermanentFailure]),
    ];
    for &(from, eval, newly, hold, want) in cases {
        assert_eq!(
            events_after_evaluation(from, eval, newly, hold),
            want.to_vec(),
            "{from} {eval:?} newly={newly} hold={hold}"
        );
    }
}

#[test]
fn events_after_evaluation_ignores_flags_that_do_not_apply() {
    for from in S::ALL {
        for eval in EVALUATIONS {
            for newly in [false, true] {
                for hold in [false, true] {
                    let got = events_after_evaluation(from, eval, newly, hold);
                    if eval != Evaluation::Running {
                        assert_eq!(got, events_after_evaluation(from, eval, !newly, hold));
                    }
                    if eval != Evaluation::Blocked {
                        assert_eq!(got, events_after_evaluation(from, eval, newly, !hold));
                    }
                }
            }
        }
    }
}

#[test]
fn events_after_evaluation_is_empty_where_the_finalizer_does_not_act() {
    // TaskRequest still owns these, and terminal tasks (including error) are left alone.
    let untouched = [
        S::Pending,
        S::Initializing,
        S::EnqueuingSteps,
        S::Complete,
        S::Error,
        S::Cancelled,
        S::ResolvedManually,
    ];
    for from in untouched {
        for eval in EVALUATIONS {
            for newly in [false, true] {
                for hold in [false, true] {
                    assert_eq!(
                        events_after_evaluation(from, eval, newly, hold),
                        vec![],
                        "{from} {eval:?}"
                    );
                }
            }
        }
    }
}

fn final_state_for(eval: Evaluation, hold_failed: bool) -> TaskState {
    match eval {
        Evaluation::AllComplete => S::Complete,
        Evaluation::Running => S::StepsInProcess,
        Evaluation::AwaitingRetry => S::WaitingForRetry,
        Evaluation::WaitingForDependencies => S::WaitingForDependencies,
        Evaluation::Blocked if hold_failed => S::BlockedByFailures,
        Evaluation::Blocked => S::Error,
    }
}

/// Property over every (from, evaluation, newly_enqueued, hold_failed): a non-empty list is
/// always legal from `from` and ends where the evaluation says; an empty list happens only
/// where the finalizer leaves the task alone or nothing would change.
#[test]
fn events_after_evaluation_are_always_legal_and_land_where_the_evaluation_says() {
    let mut non_empty = 0;
    for from in S::ALL {
        for eval in EVALUATIONS {
            for newly in [false, true] {
                for hold in [false, true] {
                    let ctx = format!("{from} {eval:?} newly={newly} hold={hold}");
                    let events = events_after_evaluation(from, eval, newly, hold);
                    if events.is_empty() {
                        let no_change = from == S::StepsInProcess && eval == Evaluation::Running && !newly;
                        let not_finalizers =
                            from.is_terminal() || matches!(from, S::Pending | S::Initializing | S::EnqueuingSteps);
                        assert!(no_change || not_finalizers, "unexpected empty list: {ctx}");
                        if no_change {
                            assert_eq!(from, final_state_for(eval, hold), "{ctx}");
                        }
                        continue;
                    }
                    non_empty += 1;
                    let hops = from
                        .walk(&events)
                        .unwrap_or_else(|e| panic!("illegal events {events:?} for {ctx}: {e}"));
                    assert_eq!(hops.len(), events.len(), "{ctx}");
                    assert_eq!(hops.last().unwrap().1, final_state_for(eval, hold), "{ctx}");
                }
            }
        }
    }
    // 5 acting states x 5 evaluations x 4 flag combos, minus the 2 no-change combos.
    assert_eq!(non_empty, 5 * 5 * 4 - 2);
}
