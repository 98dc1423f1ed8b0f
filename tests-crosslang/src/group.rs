//! One group of runs: a fresh database, the worker processes of one topology, every
//! case of the group's scenarios submitted at once, awaited, and read back after the
//! workers drained. The topologies:
//!
//! - [`Topology::Single`]: one language's worker runs every step (the matrix of
//!   scenario × language × backend);
//! - [`Topology::Processes`]: one worker process per language on the same database
//!   (one PostgreSQL database, or one SQLite file shared by the processes); mixed
//!   scenarios route each step to a language with its namespace;
//! - [`Topology::Embedded`]: one host-language engine with the core's built-in Rust
//!   handlers in the same process; a mixed scenario's Rust steps run there in Rust,
//!   the others in the host language.

use crate::compare::{self, Difference};
use crate::database::Database;
use crate::dead_letter;
use crate::outcome::{self, Observed, WorkerInfo, WorkerMap};
use crate::scenario::{Case, Scenario};
use crate::workers::{self, RunningWorker, Toolchain, WorkerSpec};
use crate::{Backend, Language, SuiteError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::TaskSubmission;
use tasker_core::state::TaskState;
use tasker_core::store::DomainEventPollParams;
use tasker_core::template::TemplateRegistry;
use tasker_core::worker::HandlerRegistry;
use uuid::Uuid;

/// Which processes run a group's steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topology {
    /// One worker of one language runs every step.
    Single(Language),
    /// One worker process per language, steps routed by namespace.
    Processes(Vec<Language>),
    /// One engine in the host language with the core's Rust handlers built in.
    Embedded(Language),
}

impl Topology {
    /// The column label in the report: `python`, `processes`, `embedded python`.
    pub fn label(&self) -> String {
        match self {
            Topology::Single(l) => l.name().to_string(),
            Topology::Processes(_) => "processes".into(),
            Topology::Embedded(host) => format!("embedded {host}"),
        }
    }

    /// Whether the topology runs mixed scenarios (else the single-language ones).
    pub fn runs_mixed(&self) -> bool {
        !matches!(self, Topology::Single(_))
    }
}

/// A group to run.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Who runs the steps.
    pub topology: Topology,
    /// On which database.
    pub backend: Backend,
    /// The scenarios (all mixed, or none).
    pub scenarios: Vec<Arc<Scenario>>,
    /// Handlers to swap for their broken variants, per language.
    pub broken: Vec<(Language, String)>,
}

/// Settings shared by every group.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// PostgreSQL admin URL.
    pub admin_url: Option<String>,
    /// Where worker logs go.
    pub log_dir: PathBuf,
    /// Longest wait for the group's tasks to finish.
    pub wait: Duration,
}

/// The outcome of one case in one group.
#[derive(Debug, Clone)]
pub struct CaseRun {
    /// Scenario folder.
    pub scenario: String,
    /// Case name.
    pub case: String,
    /// The group's topology.
    pub topology: Topology,
    /// The group's backend.
    pub backend: Backend,
    /// The normalised outcome (absent when the run failed before reading it).
    pub observed: Option<Value>,
    /// JSON pointers into `observed` that differ between runs by design.
    pub language_specific: Vec<String>,
    /// Differences from the expectation.
    pub differences: Vec<Difference>,
    /// Differences from the other runs of the same case ([`crate::report::cross_compare`]),
    /// and the run they were compared with.
    pub cross_differences: Vec<Difference>,
    /// The run the cross-run differences are relative to (`rust/sqlite`).
    pub cross_reference: Option<String>,
    /// Things the reader should know (what was not compared, and why).
    pub notes: Vec<String>,
    /// Why there is no outcome, or why it cannot be trusted (a worker crashed).
    pub error: Option<String>,
}

impl CaseRun {
    /// A run of `case` in the group `spec`, not compared yet.
    fn new(scenario: &Scenario, case: &Case, spec: &GroupSpec, error: Option<String>) -> Self {
        CaseRun {
            scenario: scenario.name.clone(),
            case: case.name.clone(),
            topology: spec.topology.clone(),
            backend: spec.backend,
            observed: None,
            language_specific: vec![],
            differences: vec![],
            cross_differences: vec![],
            cross_reference: None,
            notes: vec![],
            error,
        }
    }

    /// True when the case ran and matched.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.differences.is_empty() && self.cross_differences.is_empty()
    }

    /// `python/sqlite`, `processes/postgres`: the run's column in the report.
    pub fn column(&self) -> String {
        format!("{}/{}", self.topology.label(), self.backend)
    }
}

/// Runs one group; every case of its scenarios gets a [`CaseRun`].
pub async fn run_group(spec: &GroupSpec, tools: &Toolchain, opts: &RunOptions) -> Vec<CaseRun> {
    let cases: Vec<(Arc<Scenario>, usize)> = spec
        .scenarios
        .iter()
        .flat_map(|s| (0..s.cases.len()).map(move |i| (s.clone(), i)))
        .collect();
    match run(spec, tools, opts, &cases).await {
        Ok(runs) => runs,
        Err(e) => cases
            .iter()
            .map(|(s, i)| CaseRun::new(s, &s.cases[*i], spec, Some(e.to_string())))
            .collect(),
    }
}

fn label(spec: &GroupSpec) -> String {
    format!("{}-{}", spec.topology.label().replace(' ', "-"), spec.backend)
}

fn worker_specs(spec: &GroupSpec, url: &str) -> Vec<WorkerSpec> {
    let templates: Vec<PathBuf> = spec.scenarios.iter().map(|s| s.template_file.clone()).collect();
    let mut namespaces_of_all: Vec<String> = Vec::new();
    for s in &spec.scenarios {
        for ns in s.template.template.step_namespaces() {
            if !namespaces_of_all.iter().any(|n| n == ns) {
                namespaces_of_all.push(ns.to_string());
            }
        }
    }
    let make = |language: Language, namespaces: Vec<String>, builtin: bool| WorkerSpec {
        language,
        database_url: url.to_string(),
        namespaces,
        templates: templates.clone(),
        builtin_handlers: builtin,
        broken: spec
            .broken
            .iter()
            .filter(|(l, _)| *l == language)
            .map(|(_, c)| c.clone())
            .collect(),
    };
    match &spec.topology {
        Topology::Single(l) => vec![make(*l, namespaces_of_all, false)],
        Topology::Processes(langs) => langs.iter().map(|l| make(*l, vec![l.namespace()], false)).collect(),
        Topology::Embedded(host) => vec![make(*host, namespaces_of_all, true)],
    }
}

async fn run(
    spec: &GroupSpec,
    tools: &Toolchain,
    opts: &RunOptions,
    cases: &[(Arc<Scenario>, usize)],
) -> Result<Vec<CaseRun>, SuiteError> {
    let db = Database::create(spec.backend, opts.admin_url.as_deref()).await?;
    // The client engine opens (and migrates) the database before any worker does.
    // It runs no steps and never sweeps leases (an hour apart): every audit row
    // about an attempt comes from the group's workers.
    let config = EngineConfig {
        database_url: db.url.clone(),
        poll_interval_ms: 50,
        lease_sweep_interval_ms: 3_600_000,
        ..EngineConfig::default()
    };
    let store = tasker_core::store::open_with(&config.database_url, config.store_options())
        .await
        .map_err(|e| SuiteError::Run(format!("opening {}: {e}", db.url)))?;
    let engine = Engine::start_with(
        store,
        tasker_core::clock::system(),
        config,
        HandlerRegistry::new(),
        TemplateRegistry::new(),
        vec![],
    );
    let result = run_on(spec, tools, opts, cases, &engine, &db.url).await;
    engine.shutdown().await;
    db.drop_database().await;
    result
}

async fn run_on(
    spec: &GroupSpec,
    tools: &Toolchain,
    opts: &RunOptions,
    cases: &[(Arc<Scenario>, usize)],
    engine: &Engine,
    url: &str,
) -> Result<Vec<CaseRun>, SuiteError> {
    let mut starting = tokio::task::JoinSet::new();
    for w in worker_specs(spec, url) {
        let tools = tools.clone();
        let log = opts.log_dir.join(format!("{}-{}.log", label(spec), w.language));
        starting.spawn(workers::start(w, tools, log));
    }
    let mut running: Vec<RunningWorker> = Vec::new();
    let mut start_error = None;
    while let Some(joined) = starting.join_next().await {
        match joined {
            Ok(Ok(w)) => running.push(w),
            Ok(Err(e)) => start_error = Some(e),
            Err(e) => start_error = Some(SuiteError::Run(format!("starting a worker: {e}"))),
        }
    }
    if let Some(e) = start_error {
        stop_all(running).await;
        return Err(e);
    }
    let workers: WorkerMap = running
        .iter()
        .map(|w| {
            (
                w.ready.worker_id.clone(),
                WorkerInfo {
                    language: w.spec.language,
                    builtin_rust: w.spec.builtin_handlers,
                },
            )
        })
        .collect();

    // Submit every case, then wait for all of them.
    let mut tasks = Vec::new();
    for (s, i) in cases {
        let c = &s.cases[*i];
        let created = engine
            .submit(TaskSubmission::new(
                TemplateRef::Loaded(s.template.clone()),
                c.context.clone(),
            ))
            .await
            .map_err(|e| SuiteError::Run(format!("{}/{}: submitting the task: {e}", s.name, c.name)));
        match created {
            Ok(created) => tasks.push(created.task_uuid),
            Err(e) => {
                stop_all(running).await;
                return Err(e);
            }
        }
    }
    let mut unfinished = wait_for_all(engine, &tasks, opts.wait).await;

    // Dead-letter round trips, while the workers still run: sweep, resolve, and
    // wait for those tasks again.
    let round_trips = dead_letter::cases_with_round_trip(cases, &tasks);
    let mut dead_letters = HashMap::new();
    if !round_trips.is_empty() {
        dead_letters = dead_letter::sweep_and_resolve(engine.store(), &round_trips).await;
        let again: Vec<Uuid> = round_trips.iter().map(|(_, t)| *t).collect();
        unfinished.extend(wait_for_all(engine, &again, opts.wait).await);
    }

    // Stop the workers first: late results (a timed-out attempt) are settled by then.
    let stop_errors = stop_all(running).await;
    let events = stored_events(engine.store()).await;

    let mut runs = Vec::new();
    for ((s, i), task_uuid) in cases.iter().zip(&tasks) {
        let c = &s.cases[*i];
        let mut run = CaseRun::new(s, c, spec, (!stop_errors.is_empty()).then(|| stop_errors.join("\n")));
        if unfinished.contains(task_uuid) {
            run.notes
                .push(format!("the task had not finished after {} s", opts.wait.as_secs()));
        }
        match outcome::read(engine.store(), *task_uuid, &workers).await {
            Ok(observed) => judge(
                &mut run,
                s,
                c,
                &spec.topology,
                observed,
                &events,
                dead_letters.remove(task_uuid),
            ),
            Err(e) => run.error = Some(e.to_string()),
        }
        runs.push(run);
    }
    Ok(runs)
}

/// Compares one observed outcome with its expectation, filling `run`.
#[allow(clippy::too_many_arguments)]
fn judge(
    run: &mut CaseRun,
    scenario: &Scenario,
    case: &Case,
    topology: &Topology,
    observed: Observed,
    events: &Result<HashMap<Uuid, Vec<Value>>, String>,
    dead_letter: Option<Result<Value, String>>,
) {
    let template = &scenario.template.template;
    let builtins = tasker_core::examples::registry();
    let ran_by = |step: &str| -> Option<String> {
        let s = template.step(step)?;
        Some(match topology {
            Topology::Single(l) => l.name().to_string(),
            Topology::Processes(_) => template
                .step_namespace(s)
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            Topology::Embedded(host) => {
                if builtins.get(&s.handler.callable).is_some() {
                    Language::Rust.name().to_string()
                } else {
                    host.name().to_string()
                }
            }
        })
    };
    let mut expected = case.expect.document(&ran_by);
    let mut doc = observed.doc.clone();
    if case.expect.task_transitions.is_none() {
        if let Some(m) = doc.as_object_mut() {
            m.remove("task_transitions");
        }
    }
    if let Some(want) = &case.expect.domain_events {
        match events {
            Ok(events) => {
                // Only durable and broadcast events are stored; an expected fast
                // event is checked by its absence (a stored one is a difference).
                let want: Vec<Value> = want
                    .iter()
                    .filter(|e| e.mode != "fast")
                    .map(|e| json!({"name": e.name, "step": e.step, "payload": e.payload, "mode": e.mode}))
                    .collect();
                let got = events.get(&observed.task_uuid).cloned().unwrap_or_default();
                expected["domain_events"] = events_by_step_and_name(want);
                doc["domain_events"] = events_by_step_and_name(got);
            }
            Err(e) => run.error = Some(e.clone()),
        }
    }
    if let Some(want) = &case.expect.dead_letter {
        match dead_letter {
            Some(Ok(entry)) => {
                expected["dead_letter"] = want.clone();
                doc["dead_letter"] = entry;
            }
            Some(Err(e)) => run.error = Some(e),
            None => run.error = Some("the dead-letter round trip did not run".into()),
        }
    }
    run.differences = compare::compare(&expected, &doc);
    run.differences
        .extend(outcome::check_facts(&case.expect.facts, &observed));
    let mut specific = compare::language_specific_paths(&expected);
    specific.extend(case.expect.steps.keys().map(|s| format!("/steps/{s}/ran_by")));
    run.language_specific = specific;
    run.observed = Some(doc);
}

/// Events (`{name, step, payload, mode}`) as `{step: {name: [{mode, payload}]}}`,
/// each list in a stable order, so that a missing or extra event is reported at
/// its step and name rather than as a shifted list.
fn events_by_step_and_name(events: Vec<Value>) -> Value {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    for e in events {
        let step = e["step"].as_str().unwrap_or_default().to_string();
        let name = e["name"].as_str().unwrap_or_default().to_string();
        by.entry(step)
            .or_default()
            .entry(name)
            .or_default()
            .push(json!({"mode": e["mode"], "payload": e["payload"]}));
    }
    for names in by.values_mut() {
        for list in names.values_mut() {
            list.sort_by_key(|e| e.to_string());
        }
    }
    json!(by)
}

/// The durable (and broadcast) domain events stored in the group's database, by
/// task, as `{name, step, payload, mode}`: read through `Store::domain_event_poll`
/// from the first sequence, as a consumer of their own would.
async fn stored_events(store: &tasker_core::store::SharedStore) -> Result<HashMap<Uuid, Vec<Value>>, String> {
    let mut by_task: HashMap<Uuid, Vec<Value>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store
            .domain_event_poll(DomainEventPollParams {
                consumer: "conformance".into(),
                after: Some(after),
                limit: 1_000,
                name_pattern: None,
            })
            .await
            .map_err(|e| format!("reading the stored domain events failed: {e}"))?;
        let Some(last) = page.last() else {
            return Ok(by_task);
        };
        after = last.sequence;
        for stored in page {
            let e = stored.event;
            let Some(task) = e.task_uuid else { continue };
            by_task.entry(task).or_default().push(json!({
                "name": e.name, "step": e.step_name, "payload": e.payload, "mode": e.mode,
            }));
        }
    }
}

async fn stop_all(running: Vec<RunningWorker>) -> Vec<String> {
    let mut stopping = tokio::task::JoinSet::new();
    for w in running {
        stopping.spawn(w.stop());
    }
    let mut errors = Vec::new();
    while let Some(joined) = stopping.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(format!("stopping a worker: {e}")),
        }
    }
    errors
}

/// Polls until every task is finished (or blocked for an operator), or `wait` ran
/// out; returns the tasks still running.
async fn wait_for_all(engine: &Engine, tasks: &[Uuid], wait: Duration) -> Vec<Uuid> {
    let deadline = Instant::now() + wait;
    let mut left: BTreeMap<Uuid, ()> = tasks.iter().map(|t| (*t, ())).collect();
    while !left.is_empty() && Instant::now() < deadline {
        let mut done = Vec::new();
        for t in left.keys() {
            if let Ok(Some(task)) = engine.store().task_get(*t).await {
                if task.state.is_terminal() || task.state == TaskState::BlockedByFailures {
                    done.push(*t);
                }
            }
        }
        for t in done {
            left.remove(&t);
        }
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    left.into_keys().collect()
}
