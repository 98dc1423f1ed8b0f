//! Exhaustive tests of the step state machine against an independently written table.

use super::step::{StepEvent, StepState};
use super::{InvalidTransition, UnknownEvent, UnknownState};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use StepEvent as E;
use StepState as S;

/// The legal edges, written out by hand (not derived from `apply`).
const EDGES: &[(StepState, StepEvent, StepState)] = &[
    (S::Pending, E::Enqueue, S::Enqueued),
    (S::Enqueued, E::Start, S::InProgress),
    (S::InProgress, E::Succeed, S::EnqueuedForOrchestration),
    (S::InProgress, E::Fail, S::EnqueuedAsErrorForOrchestration),
    (S::InProgress, E::Release, S::Enqueued),
    (S::InProgress, E::LeaseExpired, S::Enqueued),
    (S::EnqueuedForOrchestration, E::Complete, S::Complete),
    (S::EnqueuedAsErrorForOrchestration, E::WaitForRetry, S::WaitingForRetry),
    (S::EnqueuedAsErrorForOrchestration, E::GiveUp, S::Error),
    (S::WaitingForRetry, E::Retry, S::Pending),
    (S::Error, E::ResetForRetry, S::Pending),
    // cancel
    (S::Pending, E::Cancel, S::Cancelled),
    (S::Enqueued, E::Cancel, S::Cancelled),
    (S::InProgress, E::Cancel, S::Cancelled),
    (S::EnqueuedForOrchestration, E::Cancel, S::Cancelled),
    (S::EnqueuedAsErrorForOrchestration, E::Cancel, S::Cancelled),
    (S::WaitingForRetry, E::Cancel, S::Cancelled),
    (S::Error, E::Cancel, S::Cancelled),
    // resolve_manually
    (S::Pending, E::ResolveManually, S::ResolvedManually),
    (S::Enqueued, E::ResolveManually, S::ResolvedManually),
    (S::InProgress, E::ResolveManually, S::ResolvedManually),
    (S::EnqueuedForOrchestration, E::ResolveManually, S::ResolvedManually),
    (
        S::EnqueuedAsErrorForOrchestration,
        E::ResolveManually,
        S::ResolvedManually,
    ),
    (S::WaitingForRetry, E::ResolveManually, S::ResolvedManually),
    (S::Error, E::ResolveManually, S::ResolvedManually),
    // complete_manually
    (S::Pending, E::CompleteManually, S::Complete),
    (S::Enqueued, E::CompleteManually, S::Complete),
    (S::InProgress, E::CompleteManually, S::Complete),
    (S::EnqueuedForOrchestration, E::CompleteManually, S::Complete),
    (S::EnqueuedAsErrorForOrchestration, E::CompleteManually, S::Complete),
    (S::WaitingForRetry, E::CompleteManually, S::Complete),
    (S::Error, E::CompleteManually, S::Complete),
    // dead_letter (the staleness sweep)
    (S::Pending, E::DeadLetter, S::Error),
    (S::Enqueued, E::DeadLetter, S::Error),
    (S::InProgress, E::DeadLetter, S::Error),
    (S::EnqueuedForOrchestration, E::DeadLetter, S::Error),
    (S::EnqueuedAsErrorForOrchestration, E::DeadLetter, S::Error),
    (S::WaitingForRetry, E::DeadLetter, S::Error),
];

const STATE_NAMES: &[(StepState, &str)] = &[
    (S::Pending, "pending"),
    (S::Enqueued, "enqueued"),
    (S::InProgress, "in_progress"),
    (S::EnqueuedForOrchestration, "enqueued_for_orchestration"),
    (
        S::EnqueuedAsErrorForOrchestration,
        "enqueued_as_error_for_orchestration",
    ),
    (S::WaitingForRetry, "waiting_for_retry"),
    (S::Complete, "complete"),
    (S::Error, "error"),
    (S::Cancelled, "cancelled"),
    (S::ResolvedManually, "resolved_manually"),
];

const EVENT_NAMES: &[(StepEvent, &str)] = &[
    (E::Enqueue, "enqueue"),
    (E::Start, "start"),
    (E::Succeed, "succeed"),
    (E::Fail, "fail"),
    (E::Release, "release"),
    (E::LeaseExpired, "lease_expired"),
    (E::Complete, "complete"),
    (E::WaitForRetry, "wait_for_retry"),
    (E::GiveUp, "give_up"),
    (E::Retry, "retry"),
    (E::ResetForRetry, "reset_for_retry"),
    (E::Cancel, "cancel"),
    (E::ResolveManually, "resolve_manually"),
    (E::CompleteManually, "complete_manually"),
    (E::DeadLetter, "dead_letter"),
];

/// Exhaustive matches: adding a variant without updating the tests fails to compile.
fn state_index(s: StepState) -> usize {
    match s {
        S::Pending => 0,
        S::Enqueued => 1,
        S::InProgress => 2,
        S::EnqueuedForOrchestration => 3,
        S::EnqueuedAsErrorForOrchestration => 4,
        S::WaitingForRetry => 5,
        S::Complete => 6,
        S::Error => 7,
        S::Cancelled => 8,
        S::ResolvedManually => 9,
    }
}

fn event_index(e: StepEvent) -> usize {
    match e {
        E::Enqueue => 0,
        E::Start => 1,
        E::Succeed => 2,
        E::Fail => 3,
        E::Release => 4,
        E::LeaseExpired => 5,
        E::Complete => 6,
        E::WaitForRetry => 7,
        E::GiveUp => 8,
        E::Retry => 9,
        E::ResetForRetry => 10,
        E::Cancel => 11,
        E::ResolveManually => 12,
        E::CompleteManually => 13,
        E::DeadLetter => 14,
    }
}

fn expected() -> HashMap<(StepState, StepEvent), StepState> {
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

#[test]
fn all_arrays_hold_every_variant_once() {
    let states: HashSet<usize> = S::ALL.iter().map(|&s| state_index(s)).collect();
    assert_eq!(states, (0..10).collect::<HashSet<_>>());
    let events: HashSet<usize> = E::ALL.iter().map(|&e| event_index(e)).collect();
    assert_eq!(events, (0..15).collect::<HashSet<_>>());
    assert_eq!(STATE_NAMES.len(), S::ALL.len());
    assert_eq!(EVENT_NAMES.len(), E::ALL.len());
}

#[test]
fn every_state_event_pair_matches_the_expected_table() {
    let table = expected();
    assert_eq!(table.len(), 38);
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
                            machine: "step",
                            from: from.as_str(),
                            event: ev.as_str(),
                        }
                    );
                    assert_eq!(
                        err.to_string(),
                        format!("invalid step transition: `{ev}` is not allowed from `{from}`")
                    );
                }
            }
        }
    }
    assert_eq!(legal, 38);
    assert_eq!(S::ALL.len() * E::ALL.len() - legal, 150 - 38);
}

#[test]
fn state_names_round_trip() {
    for &(s, name) in STATE_NAMES {
        assert_eq!(s.as_str(), name);
        assert_eq!(s.to_string(), name);
        assert_eq!(StepState::from_str(name), Ok(s));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<StepState>(&json).unwrap(), s);
    }
}

#[test]
fn event_names_round_trip() {
    for &(e, name) in EVENT_NAMES {
        assert_eq!(e.as_str(), name);
        assert_eq!(e.to_string(), name);
        assert_eq!(StepEvent::from_str(name), Ok(e));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<StepEvent>(&json).unwrap(), e);
    }
}

#[test]
fn unknown_names_are_rejected() {
    for bad in [
        "",
        "Pending",
        "PENDING",
        " pending",
        "in-progress",
        "InProgress",
        "done",
        "cancel",
    ] {
        let err = StepState::from_str(bad).unwrap_err();
        assert_eq!(
            err,
            UnknownState {
                machine: "step",
                value: bad.to_string()
            }
        );
        assert_eq!(err.to_string(), format!("unknown step state `{bad}`"));
        assert!(serde_json::from_str::<StepState>(&format!("\"{bad}\"")).is_err());
    }
    for bad in [
        "",
        "Enqueue",
        "ENQUEUE",
        "lease-expired",
        "LeaseExpired",
        "cancelled",
        "reopen",
    ] {
        let err = StepEvent::from_str(bad).unwrap_err();
        assert_eq!(
            err,
            UnknownEvent {
                machine: "step",
                value: bad.to_string()
            }
        );
        assert_eq!(err.to_string(), format!("unknown step event `{bad}`"));
        assert!(serde_json::from_str::<StepEvent>(&format!("\"{bad}\"")).is_err());
    }
}

#[test]
fn predicates() {
    let terminal = [S::Complete, S::Cancelled, S::ResolvedManually];
    let satisfies = [S::Complete, S::ResolvedManually];
    let in_flight = [
        S::Enqueued,
        S::InProgress,
        S::EnqueuedForOrchestration,
        S::EnqueuedAsErrorForOrchestration,
    ];
    for s in S::ALL {
        assert_eq!(s.is_terminal(), terminal.contains(&s), "{s}");
        assert_eq!(s.satisfies_dependencies(), satisfies.contains(&s), "{s}");
        assert_eq!(s.is_in_flight(), in_flight.contains(&s), "{s}");
    }
}

#[test]
fn nothing_leaves_a_terminal_state() {
    for s in [S::Complete, S::Cancelled, S::ResolvedManually] {
        for e in E::ALL {
            assert!(s.apply(e).is_err(), "{s} --{e}--> should be illegal");
        }
    }
    // and every non-terminal state has at least one way out
    for s in S::ALL.into_iter().filter(|s| !s.is_terminal()) {
        assert!(E::ALL.into_iter().any(|e| s.apply(e).is_ok()), "{s}");
    }
}

#[test]
fn error_is_not_terminal_and_only_operators_move_it() {
    let outs: Vec<_> = E::ALL
        .into_iter()
        .filter_map(|e| S::Error.apply(e).ok().map(|to| (e, to)))
        .collect();
    assert_eq!(
        outs,
        vec![
            (E::ResetForRetry, S::Pending),
            (E::Cancel, S::Cancelled),
            (E::ResolveManually, S::ResolvedManually),
            (E::CompleteManually, S::Complete),
        ]
    );
}

#[test]
fn walk_returns_every_hop() {
    // a step that fails once, waits, is claimed again and succeeds
    let events = [
        E::Enqueue,
        E::Start,
        E::Fail,
        E::WaitForRetry,
        E::Retry,
        E::Enqueue,
        E::Start,
        E::LeaseExpired,
        E::Start,
        E::Succeed,
        E::Complete,
    ];
    assert_eq!(
        S::Pending.walk(&events),
        Ok(vec![
            (E::Enqueue, S::Enqueued),
            (E::Start, S::InProgress),
            (E::Fail, S::EnqueuedAsErrorForOrchestration),
            (E::WaitForRetry, S::WaitingForRetry),
            (E::Retry, S::Pending),
            (E::Enqueue, S::Enqueued),
            (E::Start, S::InProgress),
            (E::LeaseExpired, S::Enqueued),
            (E::Start, S::InProgress),
            (E::Succeed, S::EnqueuedForOrchestration),
            (E::Complete, S::Complete),
        ])
    );
    assert_eq!(S::InProgress.walk(&[]), Ok(vec![]));
    assert_eq!(
        S::Error.walk(&[E::ResetForRetry, E::Enqueue, E::Release]),
        Err(InvalidTransition {
            machine: "step",
            from: "enqueued",
            event: "release"
        })
    );
}

#[test]
fn walk_stops_at_the_first_illegal_event() {
    // `complete` is illegal from enqueued; `start` after it would be illegal from pending
    // too, but the error must name the first one.
    assert_eq!(
        S::Pending.walk(&[E::Enqueue, E::Complete, E::Retry, E::Start]),
        Err(InvalidTransition {
            machine: "step",
            from: "enqueued",
            event: "complete"
        })
    );
    assert_eq!(
        S::Complete.walk(&[E::Cancel, E::Enqueue]),
        Err(InvalidTransition {
            machine: "step",
            from: "complete",
            event: "cancel"
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
                        machine: "step",
                        from: from.as_str(),
                        event: a.as_str(),
                    }),
                    Some(&mid) => match table.get(&(mid, b)) {
                        None => Err(InvalidTransition {
                            machine: "step",
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

/// Parses `from --event--> to` / `from --> to : event` edges.
pub(super) fn parse_edge(line: &str) -> Option<(String, String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.contains("[*]") {
        return None;
    }
    if let Some((lhs, ev)) = line.split_once(" : ") {
        let (from, to) = lhs.split_once("-->")?;
        return Some((from.trim().into(), ev.trim().into(), to.trim().into()));
    }
    let toks: Vec<&str> = line.split_whitespace().collect();
    if toks.len() != 3 {
        return None;
    }
    let ev = toks[1].strip_prefix("--")?.strip_suffix("-->")?;
    Some((toks[0].into(), ev.into(), toks[2].into()))
}

/// The `n`th ```mermaid block of the docs.
pub(super) fn mermaid_edges(n: usize) -> BTreeSet<(String, String, String)> {
    let doc = include_str!("../../../docs/state-machines.md");
    let blocks: Vec<&str> = doc
        .split("```mermaid")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "expected a step and a task diagram");
    assert!(blocks[n].trim_start().starts_with("stateDiagram-v2"));
    blocks[n].lines().skip(1).filter_map(parse_edge).collect()
}

/// The ```text table in a module's `//!` header.
pub(super) fn header_edges(src: &str) -> BTreeSet<(String, String, String)> {
    let mut inside = false;
    let mut out = BTreeSet::new();
    for line in src.lines() {
        let Some(rest) = line.strip_prefix("//!") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "```text" {
            inside = true;
        } else if rest == "```" && inside {
            break;
        } else if inside {
            if let Some(edge) = parse_edge(rest) {
                assert!(out.insert(edge.clone()), "duplicate {edge:?}");
            } else {
                assert!(rest.is_empty() || rest.starts_with('#'), "unparsed line {rest:?}");
            }
        }
    }
    out
}

#[test]
fn docs_diagram_matches_the_table() {
    assert_eq!(mermaid_edges(0), edge_set());
}

#[test]
fn header_comment_matches_the_table() {
    assert_eq!(header_edges(include_str!("step.rs")), edge_set());
}
