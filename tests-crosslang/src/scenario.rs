//! Scenarios as data. A scenario is a folder under `scenarios/` with a
//! `scenario.yaml`:
//!
//! ```yaml
//! description: What the scenario proves.
//! template: template.yaml        # relative to the folder (may point at examples/)
//! mixed: false                   # true: steps are routed to languages (see below)
//! cases:
//!   - name: n6
//!     context: { n: 6 }
//!     expect:
//!       task: complete
//!       task_transitions: [task_runs, task_completes]    # optional
//!       steps:
//!         step_1: { state: complete, attempts: 1, result: { value: 36 },
//!                   transitions: [root, succeeds] }
//!       domain_events: [ { name: x.y, step: step_1, payload: {...}, mode: durable } ]  # optional
//!       dead_letter: { reason: error_unresolved, ... }   # with a case-level `dead_letter`
//!       facts: [ { gap: { step: s, after: waiting_for_retry, before: in_progress, at_least_ms: 300 } } ]
//! ```
//!
//! Every step of the template must be listed (`state: not_created` for one that must
//! not exist, such as a branch a decision did not take), and `result` and `error`
//! default to null, so an expectation says everything about a step. A step created
//! at run time (a batch worker) is listed under its own name with `template_step:`
//! naming the template step it comes from. Transition lists are
//! written with the names of `scenarios/paths.yaml` (or literal `from -> to (event)`
//! lines). Expected values may use matchers ([`crate::compare`]); a context may use
//! `$repeat` to build large strings.
//!
//! A *mixed* scenario routes each step to a language with `namespace:
//! conformance.<language>`; it runs with one worker process per language, and inside
//! one host-language engine whose Rust steps use the core's built-in handlers.

use crate::compare;
use crate::SuiteError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tasker_core::template::{load_file, LoadedTemplate};

/// Step namespaces of mixed scenarios are `<this>.<language>`.
pub const MIXED_NAMESPACE_PREFIX: &str = "conformance";

/// One scenario folder.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder name.
    pub name: String,
    /// What the scenario proves.
    pub description: String,
    /// The template file.
    pub template_file: PathBuf,
    /// The template, loaded and validated.
    pub template: Arc<LoadedTemplate>,
    /// Whether steps are routed to languages (`conformance.<language>` namespaces).
    pub mixed: bool,
    /// The tasks to run.
    pub cases: Vec<Case>,
}

/// One task of a scenario: its context and what must happen to it.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique within the scenario.
    pub name: String,
    /// The task context (with `$repeat` expanded).
    pub context: Value,
    /// The dead-letter round trip the runner drives, if any.
    pub dead_letter: Option<DeadLetterSpec>,
    /// The expected outcome.
    pub expect: Expect,
}

/// The expected outcome of one task.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The final task state.
    pub task: String,
    /// The task's transitions, when the scenario states them.
    pub task_transitions: Option<Vec<String>>,
    /// Every step, by name.
    pub steps: BTreeMap<String, ExpectStep>,
    /// The domain events the task's steps publish, when the scenario states them.
    pub domain_events: Option<Vec<ExpectedEvent>>,
    /// The task's dead-letter entry after its resolution (with matchers), for a
    /// case with a [`DeadLetterSpec`].
    pub dead_letter: Option<Value>,
    /// Recorded facts to check (not compared across runs).
    pub facts: Vec<Fact>,
}

/// The `state` of a step that must not exist.
pub const NOT_CREATED: &str = "not_created";

/// The expected end of one step.
#[derive(Debug, Clone)]
pub struct ExpectStep {
    /// The template step it comes from (its own name unless created at run time).
    pub template_step: String,
    /// Final state ([`NOT_CREATED`]: the step must not exist).
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// Result (null when absent), possibly with matchers.
    pub result: Value,
    /// Error of the last failed attempt, without its backtrace (null when absent).
    pub error: Value,
    /// Transitions, expanded to `from -> to (event)` lines.
    pub transitions: Vec<String>,
}

/// A domain event a task must publish.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEvent {
    /// Event name.
    pub name: String,
    /// The step that published it.
    pub step: String,
    /// Its payload.
    #[serde(default)]
    pub payload: Value,
    /// How it is delivered: `durable` and `broadcast` events are stored (and
    /// compared with the store's rows); a `fast` one must not be stored.
    pub mode: String,
}

/// The delivery modes an expected event may name.
pub const EVENT_MODES: [&str; 3] = ["durable", "fast", "broadcast"];

/// What the runner does with a case's task once it stopped, before reading it:
/// a staleness sweep that must record it in the dead-letter queue, then an
/// operator's resolution; the task is then awaited again.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSpec {
    /// How the entry is resolved.
    pub resolve: DeadLetterResolve,
}

/// An operator's resolution of a dead-letter entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterResolve {
    /// `complete_step`, `resolve_step` or `retry_step`.
    pub action: String,
    /// The step acted on (by name).
    pub step: String,
    /// The result supplied with `complete_step`.
    #[serde(default)]
    pub result: Value,
}

/// The resolution actions a scenario may name.
pub const DEAD_LETTER_ACTIONS: [&str; 3] = ["complete_step", "resolve_step", "retry_step"];

/// A fact recorded by the engine that a run must show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Fact {
    /// At least `at_least_ms` passed between the step entering `after` and its next
    /// entry into `before` (read from the audit rows' times).
    Gap {
        /// The step.
        step: String,
        /// The earlier state.
        after: String,
        /// The later state.
        before: String,
        /// The least time between them.
        at_least_ms: i64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    description: String,
    template: PathBuf,
    #[serde(default)]
    mixed: bool,
    cases: Vec<CaseFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    #[serde(default = "empty_object")]
    context: Value,
    #[serde(default)]
    dead_letter: Option<DeadLetterSpec>,
    expect: ExpectFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    task: String,
    #[serde(default)]
    task_transitions: Option<Vec<String>>,
    steps: BTreeMap<String, StepFile>,
    #[serde(default)]
    domain_events: Option<Vec<ExpectedEvent>>,
    #[serde(default)]
    dead_letter: Option<Value>,
    // `- gap: {...}`: one key naming the kind of fact.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    facts: Vec<Fact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    #[serde(default)]
    template_step: Option<String>,
    state: String,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Value,
    transitions: Vec<String>,
}

fn empty_object() -> Value {
    json!({})
}

/// Named transition sequences (`scenarios/paths.yaml`).
pub type Paths = BTreeMap<String, Vec<String>>;

/// Loads `paths.yaml` and every scenario folder under `dir`, sorted by name.
pub fn load_all(dir: &Path) -> Result<Vec<Arc<Scenario>>, SuiteError> {
    let paths_file = dir.join("paths.yaml");
    let paths: Paths = read_yaml(&paths_file, "paths.yaml")?;
    for (name, lines) in &paths {
        for line in lines {
            if !is_literal(line) {
                return Err(scenario_error(
                    "paths.yaml",
                    format!("`{name}`: `{line}` is not a `from -> to (event)` line"),
                ));
            }
        }
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| scenario_error(&dir.display().to_string(), format!("cannot list the folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.yaml").is_file())
        .collect();
    entries.sort();
    entries.iter().map(|d| load_one(d, &paths).map(Arc::new)).collect()
}

fn load_one(dir: &Path, paths: &Paths) -> Result<Scenario, SuiteError> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
    let file: ScenarioFile = read_yaml(&dir.join("scenario.yaml"), &name)?;
    let template_file = dir.join(&file.template);
    let template = Arc::new(
        load_file(&template_file, None)
            .map_err(|e| scenario_error(&name, format!("template {}: {e}", template_file.display())))?,
    );
    let t = &template.template;
    let routed: Vec<&str> = t
        .steps
        .iter()
        .filter(|s| s.namespace.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if file.mixed {
        for s in &t.steps {
            let ns = t.step_namespace(s);
            let ok = ns
                .strip_prefix(MIXED_NAMESPACE_PREFIX)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(crate::Language::parse)
                .is_some();
            if !ok {
                return Err(scenario_error(
                    &name,
                    format!(
                        "mixed scenario: step `{}` must name its language's namespace ({MIXED_NAMESPACE_PREFIX}.<language>), not `{ns}`",
                        s.name
                    ),
                ));
            }
        }
    } else if !routed.is_empty() {
        return Err(scenario_error(
            &name,
            format!("steps {routed:?} name their own namespace: mark the scenario `mixed: true`"),
        ));
    }
    if file.cases.is_empty() {
        return Err(scenario_error(&name, "no cases"));
    }
    let mut cases = Vec::new();
    for c in file.cases {
        if cases.iter().any(|k: &Case| k.name == c.name) {
            return Err(scenario_error(&name, format!("case `{}` is listed twice", c.name)));
        }
        let context = compare::expand_repeats(&c.context)
            .map_err(|e| scenario_error(&name, format!("case `{}` context: {e}", c.name)))?;
        let expect = expectation(&name, &c.name, c.expect, paths, &template)?;
        check_dead_letter(&name, &c.name, c.dead_letter.as_ref(), &expect)?;
        cases.push(Case {
            name: c.name,
            context,
            dead_letter: c.dead_letter,
            expect,
        });
    }
    Ok(Scenario {
        name,
        description: file.description,
        template_file,
        template,
        mixed: file.mixed,
        cases,
    })
}

fn expectation(
    scenario: &str,
    case: &str,
    e: ExpectFile,
    paths: &Paths,
    template: &LoadedTemplate,
) -> Result<Expect, SuiteError> {
    let at = |what: String| scenario_error(scenario, format!("case `{case}`: {what}"));
    let declared: Vec<&str> = template.template.steps.iter().map(|s| s.name.as_str()).collect();
    for name in &declared {
        if !e.steps.contains_key(*name) {
            return Err(at(format!(
                "step `{name}` has no expectation (list every step; `state: {NOT_CREATED}` for one that must not exist)"
            )));
        }
    }
    let mut steps = BTreeMap::new();
    for (name, s) in e.steps {
        let template_step = s.template_step.clone().unwrap_or_else(|| name.clone());
        if !declared.contains(&template_step.as_str()) {
            return Err(at(if s.template_step.is_some() {
                format!("step `{name}`: `{template_step}` is not a step of the template")
            } else {
                format!("`{name}` is not a step of the template (a step created at run time names its `template_step`)")
            }));
        }
        for (what, v) in [("result", &s.result), ("error", &s.error)] {
            compare::check_matchers(v).map_err(|m| at(format!("step `{name}` {what}: {m}")))?;
        }
        let transitions = expand_path(&s.transitions, paths).map_err(|m| at(format!("step `{name}`: {m}")))?;
        steps.insert(
            name,
            ExpectStep {
                template_step,
                state: s.state,
                attempts: s.attempts,
                result: s.result,
                error: s.error,
                transitions,
            },
        );
    }
    let task_transitions = e
        .task_transitions
        .map(|t| expand_path(&t, paths))
        .transpose()
        .map_err(|m| at(format!("task_transitions: {m}")))?;
    if let Some(events) = &e.domain_events {
        for ev in events {
            if !steps.contains_key(&ev.step) {
                return Err(at(format!(
                    "domain event `{}` names unknown step `{}`",
                    ev.name, ev.step
                )));
            }
            if !EVENT_MODES.contains(&ev.mode.as_str()) {
                return Err(at(format!(
                    "domain event `{}` has mode `{}` (expected one of {})",
                    ev.name,
                    ev.mode,
                    EVENT_MODES.join(", ")
                )));
            }
        }
    }
    for f in &e.facts {
        let Fact::Gap { step, .. } = f;
        if !steps.contains_key(step) {
            return Err(at(format!("fact names unknown step `{step}`")));
        }
    }
    Ok(Expect {
        task: e.task,
        task_transitions,
        steps,
        domain_events: e.domain_events,
        dead_letter: e.dead_letter,
        facts: e.facts,
    })
}

/// A dead-letter round trip names a known action and step, and comes with an
/// expected entry (and an expected entry with a round trip).
fn check_dead_letter(
    scenario: &str,
    case: &str,
    spec: Option<&DeadLetterSpec>,
    expect: &Expect,
) -> Result<(), SuiteError> {
    let at = |what: String| scenario_error(scenario, format!("case `{case}`: {what}"));
    match (spec, &expect.dead_letter) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(at(
            "`dead_letter` needs `expect.dead_letter` (the entry after resolution)".into(),
        )),
        (None, Some(_)) => Err(at("`expect.dead_letter` needs a `dead_letter` round trip to run".into())),
        (Some(spec), Some(_)) => {
            let r = &spec.resolve;
            if !DEAD_LETTER_ACTIONS.contains(&r.action.as_str()) {
                return Err(at(format!(
                    "dead_letter action `{}` (expected one of {})",
                    r.action,
                    DEAD_LETTER_ACTIONS.join(", ")
                )));
            }
            if !expect.steps.contains_key(&r.step) {
                return Err(at(format!("dead_letter names unknown step `{}`", r.step)));
            }
            Ok(())
        }
    }
}

/// True for a literal transition line (`from -> to (event)`, `from` empty for the
/// creation row).
fn is_literal(line: &str) -> bool {
    line.contains("->") && line.trim_end().ends_with(')')
}

/// Expands segment names into their lines; literal lines stay as they are.
pub fn expand_path(entries: &[String], paths: &Paths) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in entries {
        if is_literal(e) {
            out.push(normalise_line(e));
        } else if let Some(lines) = paths.get(e) {
            out.extend(lines.iter().map(|l| normalise_line(l)));
        } else {
            return Err(format!(
                "`{e}` is neither a `from -> to (event)` line nor a name in paths.yaml (known: {})",
                paths.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(out)
}

/// One spacing for transition lines: `from -> to (event)`, `-> to (event)`.
pub fn normalise_line(line: &str) -> String {
    let (from, rest) = line.split_once("->").unwrap_or(("", line));
    let from = from.trim();
    let rest = rest.trim();
    if from.is_empty() {
        format!("-> {rest}")
    } else {
        format!("{from} -> {rest}")
    }
}

impl Expect {
    /// The expectation as a document shaped like [`crate::outcome::Observed::doc`]:
    /// `task`, `task_transitions` (when stated) and `steps` (those that must exist).
    /// `ran_by` gives the language expected to have run each step that made an
    /// attempt, from its template step's name.
    pub fn document(&self, ran_by: &dyn Fn(&str) -> Option<String>) -> Value {
        let mut steps = Map::new();
        for (name, s) in self.steps.iter().filter(|(_, s)| s.state != NOT_CREATED) {
            steps.insert(
                name.clone(),
                json!({
                    "state": s.state,
                    "attempts": s.attempts,
                    "result": s.result,
                    "error": s.error,
                    "transitions": s.transitions,
                    "ran_by": if s.attempts > 0 { ran_by(&s.template_step).map(Value::String).unwrap_or(Value::Null) } else { Value::Null },
                }),
            );
        }
        let mut doc = json!({ "task": self.task, "steps": steps });
        if let Some(t) = &self.task_transitions {
            doc["task_transitions"] = json!(t);
        }
        doc
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path, scenario: &str) -> Result<T, SuiteError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| scenario_error(scenario, format!("cannot read {}: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text).map_err(|e| scenario_error(scenario, format!("{}: {e}", path.display())))
}

fn scenario_error(scenario: &str, message: impl Into<String>) -> SuiteError {
    SuiteError::Scenario {
        scenario: scenario.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        serde_yaml_ng::from_str(
            "root: ['-> pending (create)', 'pending -> enqueued (enqueue)']\nok: ['enqueued->in_progress (start)']\n",
        )
        .unwrap()
    }

    #[test]
    fn segment_names_expand_and_literal_lines_are_respaced() {
        let lines = expand_path(
            &[
                "root".into(),
                "ok".into(),
                "in_progress->enqueued_for_orchestration (succeed)".into(),
            ],
            &paths(),
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                "-> pending (create)",
                "pending -> enqueued (enqueue)",
                "enqueued -> in_progress (start)",
                "in_progress -> enqueued_for_orchestration (succeed)"
            ]
        );
    }

    #[test]
    fn an_unknown_segment_name_is_an_error_listing_the_known_ones() {
        let err = expand_path(&["rooot".into()], &paths()).unwrap_err();
        assert!(err.contains("`rooot`") && err.contains("ok, root"), "{err}");
    }

    fn expect(yaml: &str) -> Result<Expect, SuiteError> {
        let template = tasker_core::template::parse_str(
            "namespace: t\nname: t\nversion: 1.0.0\nsteps:\n\
             \x20 - { name: decide, handler: { callable: x } }\n\
             \x20 - { name: branch, dependencies: [decide], handler: { callable: x } }\n\
             \x20 - { name: work, dependencies: [decide], handler: { callable: x } }\n",
            "<test>",
            None,
        )
        .unwrap();
        expectation("s", "c", serde_yaml_ng::from_str(yaml).unwrap(), &paths(), &template)
    }

    #[test]
    fn steps_created_at_run_time_and_steps_never_created_can_be_expected() {
        let e = expect(
            "task: complete\nsteps:\n\
             \x20 decide: { state: complete, attempts: 1, transitions: [root] }\n\
             \x20 branch: { state: not_created, transitions: [] }\n\
             \x20 work: { state: not_created, transitions: [] }\n\
             \x20 work_001: { template_step: work, state: complete, attempts: 1, transitions: [root] }\n",
        )
        .unwrap();
        let doc = e.document(&|step| Some(format!("ran {step}")));
        let steps = doc["steps"].as_object().unwrap();
        assert_eq!(
            steps.keys().collect::<Vec<_>>(),
            ["decide", "work_001"],
            "not_created steps are absent"
        );
        assert_eq!(
            steps["work_001"]["ran_by"], "ran work",
            "ran_by follows the template step"
        );
    }

    #[test]
    fn an_expectation_must_name_every_template_step_and_no_unknown_one() {
        let missing = expect("task: complete\nsteps:\n  decide: { state: complete, attempts: 1, transitions: [] }\n");
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("step `branch` has no expectation"));
        let unknown = expect(
            "task: complete\nsteps:\n  decide: { state: complete, transitions: [] }\n  branch: { state: complete, transitions: [] }\n\
             \x20 work: { state: complete, transitions: [] }\n  extra: { state: complete, transitions: [] }\n",
        );
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("`extra` is not a step of the template"));
    }

    const ALL_STEPS: &str = "task: complete\nsteps:\n\
         \x20 decide: { state: complete, attempts: 1, transitions: [] }\n\
         \x20 branch: { state: complete, attempts: 1, transitions: [] }\n\
         \x20 work: { state: complete, attempts: 1, transitions: [] }\n";

    #[test]
    fn an_expected_event_needs_a_known_mode() {
        let ok = expect(&format!(
            "{ALL_STEPS}domain_events: [{{ name: a.b, step: decide, mode: broadcast }}]\n"
        ));
        assert!(ok.is_ok(), "{ok:?}");
        let err = expect(&format!(
            "{ALL_STEPS}domain_events: [{{ name: a.b, step: decide, mode: loud }}]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("mode `loud` (expected one of durable, fast, broadcast)"),
            "{err}"
        );
    }

    #[test]
    fn a_dead_letter_round_trip_and_its_expected_entry_go_together() {
        let spec = |yaml: &str| -> DeadLetterSpec { serde_yaml_ng::from_str(yaml).unwrap() };
        let with_entry = expect(&format!("{ALL_STEPS}dead_letter: {{ status: resolved }}\n")).unwrap();
        let without = expect(ALL_STEPS).unwrap();
        let complete = spec("resolve: { action: complete_step, step: decide, result: { v: 1 } }");
        assert!(check_dead_letter("s", "c", Some(&complete), &with_entry).is_ok());
        assert!(check_dead_letter("s", "c", None, &without).is_ok());
        let cases = [
            (Some(&complete), &without, "needs `expect.dead_letter`"),
            (None, &with_entry, "needs a `dead_letter` round trip"),
            (
                Some(&spec("resolve: { action: delete_task, step: decide }")),
                &with_entry,
                "action `delete_task`",
            ),
            (
                Some(&spec("resolve: { action: retry_step, step: nowhere }")),
                &with_entry,
                "unknown step `nowhere`",
            ),
        ];
        for (spec, e, message) in cases {
            let err = check_dead_letter("s", "c", spec, e).unwrap_err().to_string();
            assert!(err.contains(message), "{message}: {err}");
        }
    }

    #[test]
    fn the_shipped_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let all = load_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(all.len() >= 15, "only {} scenarios", all.len());
        assert!(all.iter().any(|s| s.mixed), "no mixed scenario");
        assert!(
            all.iter().flat_map(|s| &s.cases).any(|c| c.dead_letter.is_some()),
            "no dead-letter round trip"
        );
    }
}
