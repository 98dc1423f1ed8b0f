//! What happened to a task, read back through the core's `Store` and normalised so
//! that runs in different languages, processes and databases compare: uuids,
//! times, worker ids and backtraces are left out; transitions become
//! `from -> to (event)` lines; each step gets the language that ran it.

use crate::compare::Difference;
use crate::scenario::Fact;
use crate::{Language, SuiteError};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use tasker_core::store::{SharedStore, TransitionRecord};
use uuid::Uuid;

/// A worker process of a group, as its `READY` line described it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The language of its handlers.
    pub language: Language,
    /// Whether it also runs the core's built-in Rust handlers (an embedded host).
    pub builtin_rust: bool,
}

/// Workers by the id they record in audit rows.
pub type WorkerMap = HashMap<String, WorkerInfo>;

/// One task's normalised outcome.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The task.
    pub task_uuid: Uuid,
    /// `{task, task_transitions, steps: {name: {state, attempts, result, error,
    /// transitions, ran_by}}}`.
    pub doc: Value,
    /// Each step's transitions as (to state, time) for fact checks.
    pub step_times: BTreeMap<String, Vec<(String, i64)>>,
}

/// A transition as one line: `from -> to (event)`, or `-> to (event)` for creation.
pub fn transition_line(t: &TransitionRecord) -> String {
    match &t.from_state {
        Some(from) => format!("{from} -> {} ({})", t.to_state, t.event),
        None => format!("-> {} ({})", t.to_state, t.event),
    }
}

/// Reads task `task_uuid` with its steps and their transitions.
pub async fn read(store: &SharedStore, task_uuid: Uuid, workers: &WorkerMap) -> Result<Observed, SuiteError> {
    let task = store
        .task_get(task_uuid)
        .await
        .map_err(|e| failed("the task", task_uuid, e))?
        .ok_or_else(|| SuiteError::Run(format!("task {task_uuid} not found")))?;
    let task_transitions = store
        .task_transitions(task_uuid)
        .await
        .map_err(|e| failed("the transitions", task_uuid, e))?;
    let builtins = tasker_core::examples::registry();
    let mut steps = Map::new();
    let mut step_times = BTreeMap::new();
    for s in &task.steps {
        let transitions = store
            .step_transitions(s.step_uuid)
            .await
            .map_err(|e| failed("step transitions", task_uuid, e))?;
        let mut error = s.error.clone().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut error {
            m.remove("backtrace"); // where a handler failed: language-specific by nature
        }
        steps.insert(
            s.name.clone(),
            json!({
                "state": s.state.to_string(),
                "attempts": s.attempts,
                "result": s.result.clone().unwrap_or(Value::Null),
                "error": error,
                "transitions": transitions.iter().map(transition_line).collect::<Vec<_>>(),
                "ran_by": ran_by(&transitions, workers, builtins.get(&s.handler).is_some()),
            }),
        );
        step_times.insert(
            s.name.clone(),
            transitions.iter().map(|t| (t.to_state.clone(), t.created_at)).collect(),
        );
    }
    Ok(Observed {
        task_uuid,
        doc: json!({
            "task": task.state.to_string(),
            "task_transitions": task_transitions.iter().map(transition_line).collect::<Vec<_>>(),
            "steps": steps,
        }),
        step_times,
    })
}

fn failed(what: &str, task_uuid: Uuid, e: impl std::fmt::Display) -> SuiteError {
    SuiteError::Run(format!("reading {what} of task {task_uuid}: {e}"))
}

/// The language(s) that ran a step's attempts, from the audit rows that recorded
/// results (their metadata names the worker, and the handler's own metadata may name
/// its language): `"python"`, `"python+rust"` when attempts ran in several, null
/// when no attempt recorded a result. An untagged result written by a host engine
/// with the built-in handlers came from Rust when the step's callable is one of the
/// core's built-ins (`builtin`: they take precedence there), else from the host's
/// own handlers.
fn ran_by(transitions: &[TransitionRecord], workers: &WorkerMap, builtin: bool) -> Value {
    let mut languages: Vec<String> = Vec::new();
    for t in transitions {
        let Some(meta) = t.metadata.as_ref().filter(|m| m.get("execution_ms").is_some()) else {
            continue;
        };
        let declared = meta
            .pointer("/handler/language")
            .and_then(Value::as_str)
            .map(String::from);
        let language = declared.unwrap_or_else(|| {
            let worker = meta.get("worker_id").and_then(Value::as_str).unwrap_or("?");
            match workers.get(worker) {
                Some(w) if w.builtin_rust && builtin => Language::Rust.name().to_string(),
                Some(w) => w.language.name().to_string(),
                None => format!("unknown worker {worker}"),
            }
        });
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    if languages.is_empty() {
        Value::Null
    } else {
        Value::String(languages.join("+"))
    }
}

/// Checks the facts of an expectation against the recorded times.
pub fn check_facts(facts: &[Fact], observed: &Observed) -> Vec<Difference> {
    let mut out = Vec::new();
    for f in facts {
        let Fact::Gap {
            step,
            after,
            before,
            at_least_ms,
        } = f;
        let path = format!("facts.gap({step}: {after} → {before})");
        let times = observed.step_times.get(step).map(Vec::as_slice).unwrap_or_default();
        let start = times.iter().position(|(to, _)| to == after);
        let end = start.and_then(|i| times[i + 1..].iter().find(|(to, _)| to == before).map(|x| x.1));
        match (start.map(|i| times[i].1), end) {
            (Some(a), Some(b)) if b - a >= *at_least_ms => {}
            (Some(a), Some(b)) => out.push(Difference {
                path,
                expected: format!("at least {at_least_ms} ms"),
                observed: format!("{} ms", b - a),
            }),
            _ => out.push(Difference {
                path,
                expected: format!("`{after}` followed by `{before}` in the step's audit rows"),
                observed: format!("{:?}", times.iter().map(|(to, _)| to.as_str()).collect::<Vec<_>>()),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(to: &str, at: i64, metadata: Option<Value>) -> TransitionRecord {
        TransitionRecord {
            transition_id: at,
            from_state: Some("x".into()),
            to_state: to.into(),
            event: "e".into(),
            metadata,
            processor: None,
            created_at: at,
            most_recent: false,
        }
    }

    #[test]
    fn ran_by_prefers_the_handlers_language_tag_then_the_worker_that_wrote_the_result() {
        let workers: WorkerMap = [
            (
                "engine-py".to_string(),
                WorkerInfo {
                    language: Language::Python,
                    builtin_rust: true,
                },
            ),
            (
                "engine-rb".to_string(),
                WorkerInfo {
                    language: Language::Ruby,
                    builtin_rust: false,
                },
            ),
        ]
        .into();
        let tagged = record(
            "complete",
            1,
            Some(json!({"worker_id": "engine-py", "execution_ms": 1, "handler": {"language": "python"}})),
        );
        let builtin = record(
            "complete",
            1,
            Some(json!({"worker_id": "engine-py", "execution_ms": 1})),
        );
        let ruby = record(
            "complete",
            1,
            Some(json!({"worker_id": "engine-rb", "execution_ms": 1})),
        );
        let claim = record("in_progress", 1, Some(json!({"worker_id": "engine-rb"})));
        assert_eq!(ran_by(&[claim.clone(), tagged], &workers, false), json!("python"));
        assert_eq!(ran_by(std::slice::from_ref(&builtin), &workers, true), json!("rust"));
        assert_eq!(
            ran_by(&[builtin], &workers, false),
            json!("python"),
            "an untagged result of a callable that is no built-in ran in the host's language"
        );
        assert_eq!(ran_by(&[ruby.clone(), ruby], &workers, false), json!("ruby"));
        assert_eq!(ran_by(&[claim], &workers, false), Value::Null);
    }

    #[test]
    fn a_gap_fact_reads_the_audit_times() {
        let observed = Observed {
            task_uuid: Uuid::nil(),
            doc: Value::Null,
            step_times: [(
                "s".to_string(),
                vec![
                    ("waiting_for_retry".into(), 1_000),
                    ("pending".into(), 1_250),
                    ("in_progress".into(), 1_250),
                ],
            )]
            .into(),
        };
        let gap = |ms| Fact::Gap {
            step: "s".into(),
            after: "waiting_for_retry".into(),
            before: "in_progress".into(),
            at_least_ms: ms,
        };
        assert!(check_facts(&[gap(250)], &observed).is_empty());
        let d = check_facts(&[gap(300)], &observed);
        assert_eq!(
            d[0].to_string(),
            "facts.gap(s: waiting_for_retry → in_progress): expected at least 300 ms, got 250 ms"
        );
    }
}
