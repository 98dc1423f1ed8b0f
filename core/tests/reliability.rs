//! Crash and restart tests on PostgreSQL: real `tasker orchestrator` and `tasker worker`
//! processes share one database; a worker, an orchestrator or the PostgreSQL server
//! itself goes away in the middle of a run, and afterwards every task must be
//! complete and the audit trail must show each step completed exactly once.
//!
//! Every test uses its own database (`support::pg::test_database()`, or a database
//! in a throwaway cluster for the server restart) and short leases, so that work a
//! dead worker held comes back within seconds. The tests run one at a time (the
//! static `LOCK`): each one keeps the two cores of a CI machine busy on its own.
//! Every wait is bounded; children are killed (and a throwaway cluster stopped) by
//! guards when a test fails. See docs/testing.md, "Reliability tests".

mod support;

use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use support::process::{tasker_command, TaskerProcess as Proc};
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::{TaskRequest, TaskSubmission};
use tasker_core::state::TaskState;
use tasker_core::store::{self, StoreOptions, TaskListParams};
use tasker_core::template::{load_file, LoadedTemplate, TemplateRegistry};
use uuid::Uuid;

/// The tests in this file run one at a time.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The longest any single wait may take.
const PATIENCE: Duration = Duration::from_secs(90);

/// Short leases: a dead worker's claims return to the queue within ~2.5 s.
const CHILD_ENV: &[(&str, &str)] = &[
    ("TASKER_LEASE_MS", "2000"),
    ("TASKER_LEASE_SWEEP_INTERVAL_MS", "500"),
    ("TASKER_POLL_INTERVAL_MS", "100"),
    ("TASKER_SHUTDOWN_GRACE_MS", "2000"),
    ("TASKER_PG_POOL_SIZE", "5"),
];

/// How long each step of the sleepy diamond sleeps.
const SLEEP_MS: u64 = 40;

// ---------------------------------------------------------------------------------
// Processes

/// Starts `tasker ARGS --database-url URL` with [`CHILD_ENV`] and waits for `ready`.
fn spawn(name: &str, url: &str, args: &[&str], ready: &str) -> Proc {
    Proc::spawn(name, tasker_command(args, url, CHILD_ENV), ready, PATIENCE)
}

fn orchestrator(name: &str, url: &str, templates: &Path) -> Proc {
    spawn(
        name,
        url,
        &["orchestrator", "--templates", templates.to_str().unwrap()],
        "orchestrator running",
    )
}

fn worker(name: &str, url: &str, namespace: &str) -> Proc {
    spawn(
        name,
        url,
        &["worker", "--namespace", namespace, "--concurrency", "8"],
        "worker running",
    )
}

/// `kill -9` a child, logging it.
fn kill9(p: &mut Proc) {
    let pid = p.pid();
    let status = p.kill9();
    eprintln!("[reliability] kill -9 {} (pid {pid}): {status}", p.name);
}

/// SIGTERM a child; it must exit 0.
fn terminate(p: &mut Proc) {
    let (code, stderr) = p.terminate();
    assert_eq!(
        code, 0,
        "{} did not stop cleanly after SIGTERM; stderr:\n{stderr}",
        p.name
    );
}

/// Every child of a test, for diagnostics and a clean stop.
#[derive(Default)]
struct Fleet {
    procs: Vec<Proc>,
}

impl Fleet {
    fn add(&mut self, p: Proc) -> usize {
        self.procs.push(p);
        self.procs.len() - 1
    }

    /// The last lines of every child's stderr, for failure messages.
    fn stderr_tails(&self) -> String {
        let mut out = String::new();
        for p in &self.procs {
            let all = p.stderr();
            let lines: Vec<&str> = all.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!("--- {} (pid {}) ---\n{}\n", p.name, p.pid(), tail.join("\n")));
        }
        out
    }

    /// Every child that was not killed on purpose must still run; then each is
    /// stopped with SIGTERM and must exit 0.
    fn assert_alive_and_stop(&mut self, killed: &[usize]) {
        for (i, p) in self.procs.iter_mut().enumerate() {
            if killed.contains(&i) {
                continue;
            }
            assert!(
                p.is_alive(),
                "{} is not running any more; stderr:\n{}",
                p.name,
                p.stderr()
            );
        }
        for (i, p) in self.procs.iter_mut().enumerate() {
            if !killed.contains(&i) {
                terminate(p);
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Templates and tasks

/// A folder holding `reliab/sleepy_diamond`: the diamond of `examples/diamond.yaml`
/// whose four steps each sleep [`SLEEP_MS`] (long enough to be killed mid-run).
fn sleepy_templates() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let step = |name: &str, deps: &str| {
        format!("  - name: {name}\n    dependencies: [{deps}]\n    handler: {{ callable: sleep, initialization: {{ ms: {SLEEP_MS} }} }}\n")
    };
    let yaml = format!(
        "namespace: reliab\nname: sleepy_diamond\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n{}{}{}{}",
        step("start", ""),
        step("left", "start"),
        step("right", "start"),
        step("end", "left, right")
    );
    let path = dir.path().join("sleepy_diamond.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

fn examples_dir() -> PathBuf {
    Path::new(REPO).join("examples")
}

/// Creates `n` tasks of `template` in-process (batches of 100, one transaction
/// each); `context(i)` gives each one's context. Returns the task UUIDs.
async fn create_tasks(url: &str, template: &Path, n: usize, context: impl Fn(usize) -> Value) -> Vec<Uuid> {
    let loaded: Arc<LoadedTemplate> = Arc::new(load_file(template, None).expect("template loads"));
    let store = store::open_with(url, StoreOptions { listen: false })
        .await
        .expect("open the store");
    let request = TaskRequest::new(
        store.clone(),
        tasker_core::clock::system(),
        Arc::new(RwLock::new(TemplateRegistry::new())),
        "reliability-test".into(),
    );
    let mut uuids = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let subs: Vec<_> = (i..n.min(i + 100))
            .map(|k| TaskSubmission::new(TemplateRef::Loaded(loaded.clone()), context(k)))
            .collect();
        for answer in request.create_many(&subs).await {
            let created = answer.expect("task created");
            assert!(created.created);
            uuids.push(created.task_uuid);
        }
        i += 100;
    }
    store.close().await;
    uuids
}

// ---------------------------------------------------------------------------------
// Watching the database

/// A small pool on the test database for progress polls and the final audit.
async fn probe(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("connect the probe")
}

/// Tasks per state and steps per state, as one line.
async fn state_counts(pool: &PgPool) -> Result<String, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT 'task' AS kind, state, count(*) AS n FROM tasks GROUP BY state \
         UNION ALL SELECT 'step', state, count(*) FROM steps GROUP BY state ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "{} {}={}",
                r.get::<String, _>("kind"),
                r.get::<String, _>("state"),
                r.get::<i64, _>("n")
            )
        })
        .collect::<Vec<_>>()
        .join(", "))
}

async fn scalar(pool: &PgPool, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await
}

async fn complete_tasks(pool: &PgPool) -> Result<i64, sqlx::Error> {
    scalar(pool, "SELECT count(*) FROM tasks WHERE state = 'complete'").await
}

/// Polls `cond` every 50 ms until it holds; fails after [`PATIENCE`] with the state
/// counts and the children's stderr. Query errors (a restarting server) are retried.
async fn wait_until<F, Fut>(pool: &PgPool, fleet: &Fleet, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, sqlx::Error>>,
{
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match cond().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
        if start.elapsed() > PATIENCE {
            let counts = state_counts(pool)
                .await
                .unwrap_or_else(|e| format!("(cannot count: {e})"));
            panic!(
                "timed out after {:?} waiting for {what}\nstates: {counts}\nlast query error: {last_error:?}\n{}",
                PATIENCE,
                fleet.stderr_tails()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every one of `n` tasks is complete.
async fn wait_all_complete(pool: &PgPool, fleet: &Fleet, n: usize) {
    wait_until(pool, fleet, &format!("all {n} tasks to complete"), || async {
        Ok(complete_tasks(pool).await? == n as i64)
    })
    .await;
}

/// Waits until at least `fraction` of `n` tasks are complete and some steps are
/// running in at least `holders` different workers (so a kill hits running work).
async fn wait_mid_run(pool: &PgPool, fleet: &Fleet, n: usize, fraction: f64, holders: i64) {
    let target = (n as f64 * fraction).ceil() as i64;
    wait_until(
        pool,
        fleet,
        &format!("{target} complete tasks while steps run in {holders} worker(s)"),
        || async {
            let done = complete_tasks(pool).await?;
            let running = scalar(
                pool,
                "SELECT count(DISTINCT claimed_by) FROM steps WHERE state = 'in_progress'",
            )
            .await?;
            Ok(done >= target && running >= holders)
        },
    )
    .await;
}

/// What the audit found, for the tests' own extra assertions and notes.
#[derive(Debug)]
struct Audit {
    lease_expired: i64,
    steps: usize,
}

/// The checks every test ends with, made on the database directly:
/// - the Store API lists `expected.len()` tasks, all `complete`, and `task_get`
///   shows every step `complete` with a result;
/// - each task has exactly one task transition into `complete`, each step exactly
///   one into `complete` and exactly one into `enqueued_for_orchestration` (one
///   result was accepted; a lost worker's late write would make a second);
/// - every audit chain is consistent: it starts with a creation row (no
///   from_state), each row's from_state is the previous row's to_state (so no row
///   is recorded twice and none is missing), and the last row (the most recent one:
///   audit rows are append-only) equals the entity's current state;
/// - no step burned an attempt for a lost lease: `attempts` is 1 everywhere.
async fn audit(url: &str, pool: &PgPool, expected: &[Uuid], check_result: impl Fn(&str, &Value, &Value)) -> Audit {
    // Store API view.
    let store = store::open_with(url, StoreOptions { listen: false })
        .await
        .expect("open the store");
    let listed = store
        .task_list(TaskListParams {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("task_list");
    assert_eq!(
        listed.len(),
        expected.len(),
        "task_list shows every task and nothing else"
    );
    let not_complete: Vec<_> = listed
        .iter()
        .filter(|t| t.state != TaskState::Complete)
        .map(|t| (t.task_uuid, t.state))
        .collect();
    assert!(not_complete.is_empty(), "tasks not complete: {not_complete:?}");
    for uuid in expected {
        let task = store
            .task_get(*uuid)
            .await
            .expect("task_get")
            .unwrap_or_else(|| panic!("task {uuid} is missing"));
        for step in &task.steps {
            assert_eq!(
                step.state.as_str(),
                "complete",
                "task {uuid} step {}: {step:?}",
                step.name
            );
            assert_eq!(
                step.attempts, 1,
                "task {uuid} step {} burned an attempt: {step:?}",
                step.name
            );
            let result = step
                .result
                .as_ref()
                .unwrap_or_else(|| panic!("task {uuid} step {} has no result", step.name));
            check_result(&step.name, &task.context, result);
        }
    }
    // A sample through the Store's transition API, which the SQL below must agree with.
    let sample = expected[expected.len() / 2];
    let task_rows = store.task_transitions(sample).await.expect("task_transitions");
    assert_eq!(
        task_rows.iter().filter(|r| r.to_state == "complete").count(),
        1,
        "task {sample}: {task_rows:#?}"
    );
    for step in store.task_get(sample).await.unwrap().unwrap().steps {
        let rows = store.step_transitions(step.step_uuid).await.expect("step_transitions");
        assert_eq!(
            rows.iter().filter(|r| r.to_state == "complete").count(),
            1,
            "step {}: {rows:#?}",
            step.step_uuid
        );
    }
    store.close().await;

    // Every chain, in one query per table.
    let task_states: HashMap<Uuid, String> = sqlx::query("SELECT task_uuid, state FROM tasks")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let step_states: HashMap<Uuid, String> = sqlx::query("SELECT step_uuid, state FROM steps")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let task_rows = sqlx::query(
        "SELECT task_uuid, transition_id, from_state, to_state, event FROM task_transitions ORDER BY task_uuid, transition_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let step_rows = sqlx::query(
        "SELECT step_uuid, transition_id, from_state, to_state, event FROM step_transitions ORDER BY step_uuid, transition_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let tasks = check_chains("task", &task_rows, &task_states, &[("complete", 1)]);
    let steps = check_chains(
        "step",
        &step_rows,
        &step_states,
        &[("complete", 1), ("enqueued_for_orchestration", 1)],
    );
    assert_eq!(tasks, expected.len(), "every task has audit rows");
    assert_eq!(steps, step_states.len(), "every step has audit rows");
    let lease_expired = step_rows
        .iter()
        .filter(|r| r.get::<String, _>("event") == "lease_expired")
        .count() as i64;
    Audit { lease_expired, steps }
}

/// Checks each entity's chain (rows sorted by entity, then transition_id) and that
/// it entered each state in `once` exactly that many times. Returns the number of
/// entities seen.
fn check_chains(
    kind: &str,
    rows: &[sqlx::postgres::PgRow],
    states: &HashMap<Uuid, String>,
    once: &[(&str, usize)],
) -> usize {
    // (transition_id, from_state, to_state, event)
    type Row = (i64, Option<String>, String, String);
    let mut by_entity: Vec<(Uuid, Vec<Row>)> = Vec::new();
    for r in rows {
        let id: Uuid = r.get(0);
        let row = (
            r.get::<i64, _>(1),
            r.get::<Option<String>, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
        );
        match by_entity.last_mut() {
            Some((last, chain)) if *last == id => chain.push(row),
            _ => by_entity.push((id, vec![row])),
        }
    }
    for (id, chain) in &by_entity {
        let show = || {
            chain
                .iter()
                .map(|(tid, f, t, e)| format!("  #{tid} {f:?} -> {t} ({e})"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            chain[0].1.is_none(),
            "{kind} {id}: the first audit row is not a creation row:\n{}",
            show()
        );
        for pair in chain.windows(2) {
            assert_eq!(
                pair[1].1.as_deref(),
                Some(pair[0].2.as_str()),
                "{kind} {id}: audit row #{} does not continue from #{} (a row recorded twice, or one missing):\n{}",
                pair[1].0,
                pair[0].0,
                show()
            );
        }
        let state = states
            .get(id)
            .unwrap_or_else(|| panic!("{kind} {id} has audit rows but no row of its own"));
        assert_eq!(
            &chain.last().unwrap().2,
            state,
            "{kind} {id}: the last audit row disagrees with its state:\n{}",
            show()
        );
        for (to, times) in once {
            let n = chain.iter().filter(|r| r.2 == *to).count();
            assert_eq!(n, *times, "{kind} {id} entered `{to}` {n} times:\n{}", show());
        }
    }
    by_entity.len()
}

/// Each step of the sleepy diamond returns `{"slept_ms": SLEEP_MS}`.
fn sleepy_result(step: &str, _context: &Value, result: &Value) {
    assert_eq!(result, &json!({ "slept_ms": SLEEP_MS }), "step {step}");
}

/// The diamond with context n: start n^2, left and right n^4, end n^16.
fn diamond_result(step: &str, context: &Value, result: &Value) {
    let n = context["n"].as_i64().unwrap();
    let expected = match step {
        "start" => n.pow(2),
        "left" | "right" => n.pow(4),
        "end" => n.pow(16),
        other => panic!("unexpected step {other}"),
    };
    assert_eq!(result["value"], json!(expected), "step {step} of n={n}");
}

/// A kill that hit running work shows as `lease_expired` events. None is not a
/// failure (the kill may land between steps), only a weaker run: say so.
fn note_lease_expiry(test: &str, audit: &Audit, why_none: &str) {
    if audit.lease_expired > 0 {
        eprintln!(
            "[reliability] {test}: {} lease_expired event(s) over {} steps",
            audit.lease_expired, audit.steps
        );
    } else {
        eprintln!("[reliability] {test}: NOTE: no lease_expired event: {why_none}");
    }
}

/// Where to strike: after a random 20-40 % of the tasks completed.
fn random_fraction(test: &str) -> f64 {
    let f = rand::random_range(0.2..0.4);
    eprintln!(
        "[reliability] {test}: striking after {:.0} % of the tasks completed",
        f * 100.0
    );
    f
}

/// Leases expired although no process died: not wrong (the step ran again without
/// burning an attempt, and the audit above holds), but a sign of a machine too
/// loaded for 2 s leases, or of a lease keeper that fell behind.
fn note_spurious_lease_expiry(test: &str, audit: &Audit) {
    if audit.lease_expired > 0 {
        eprintln!(
            "[reliability] {test}: NOTE: {} lease(s) expired although no worker died",
            audit.lease_expired
        );
    }
}

// ---------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_run_loses_nothing() {
    let _serial = LOCK.lock().await;
    let started = Instant::now();
    let db = support::pg::test_database().await;
    let (dir, template) = sleepy_templates();
    let mut fleet = Fleet::default();
    fleet.add(orchestrator("orchestrator", &db.url, dir.path()));
    let n = 240;
    let tasks = create_tasks(&db.url, &template, n, |k| json!({ "k": k })).await;
    let victim = fleet.add(worker("worker-1", &db.url, "reliab"));
    fleet.add(worker("worker-2", &db.url, "reliab"));
    let pool = probe(&db.url).await;

    // Both workers hold running steps and 25 % of the tasks are done: kill one.
    wait_mid_run(
        &pool,
        &fleet,
        n,
        random_fraction("killing_a_worker_mid_run_loses_nothing"),
        2,
    )
    .await;
    let held = scalar(&pool, "SELECT count(*) FROM steps WHERE state = 'in_progress'")
        .await
        .unwrap();
    kill9(&mut fleet.procs[victim]);
    eprintln!(
        "[reliability] worker killed with {held} step(s) in progress ({:?} in)",
        started.elapsed()
    );
    let restarted = fleet.add(worker("worker-1 (restarted)", &db.url, "reliab"));
    wait_all_complete(&pool, &fleet, n).await;

    let audit = audit(&db.url, &pool, &tasks, sleepy_result).await;
    note_lease_expiry(
        "killing_a_worker_mid_run_loses_nothing",
        &audit,
        "the killed worker's steps all finished before the kill landed",
    );
    assert!(fleet.procs[restarted].is_alive());
    fleet.assert_alive_and_stop(&[victim]);
    pool.close().await;
    eprintln!(
        "[reliability] killing_a_worker_mid_run_loses_nothing: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_orchestrator_mid_run_loses_nothing() {
    let _serial = LOCK.lock().await;
    let started = Instant::now();
    let db = support::pg::test_database().await;
    let (dir, template) = sleepy_templates();
    let mut fleet = Fleet::default();
    let victim = fleet.add(orchestrator("orchestrator-1", &db.url, dir.path()));
    let n = 200;
    let tasks = create_tasks(&db.url, &template, n, |k| json!({ "k": k })).await;
    fleet.add(worker("worker", &db.url, "reliab"));
    let pool = probe(&db.url).await;

    wait_mid_run(
        &pool,
        &fleet,
        n,
        random_fraction("killing_the_orchestrator_mid_run_loses_nothing"),
        1,
    )
    .await;
    kill9(&mut fleet.procs[victim]);
    // The worker writes results and moves tasks on by itself: work goes on while
    // no orchestrator runs.
    let before = complete_tasks(&pool).await.unwrap();
    wait_until(
        &pool,
        &fleet,
        "tasks to complete while no orchestrator runs",
        || async { Ok(complete_tasks(&pool).await? > before) },
    )
    .await;
    fleet.add(orchestrator("orchestrator-2", &db.url, dir.path()));
    wait_all_complete(&pool, &fleet, n).await;

    let audit = audit(&db.url, &pool, &tasks, sleepy_result).await;
    note_spurious_lease_expiry("killing_the_orchestrator_mid_run_loses_nothing", &audit);
    fleet.assert_alive_and_stop(&[victim]);
    pool.close().await;
    eprintln!(
        "[reliability] killing_the_orchestrator_mid_run_loses_nothing: {:?}",
        started.elapsed()
    );
}

/// A throwaway PostgreSQL cluster of our own (it gets restarted); stopped and
/// removed on drop.
struct Cluster {
    dir: PathBuf,
    admin_url: String,
}

impl Cluster {
    /// `TASKER_PG_FORCE_THROWAWAY=1 scripts/pg-test-server ensure`, parsed.
    fn start() -> Cluster {
        let out = Command::new(Path::new(REPO).join("scripts/pg-test-server"))
            .arg("ensure")
            .env("TASKER_PG_FORCE_THROWAWAY", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/pg-test-server");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_string())
        };
        // Stop what was started even if the output is not what we expect.
        let dir = value("TASKER_PG_TMP").map(PathBuf::from);
        let cluster = dir.map(|dir| Cluster {
            dir,
            admin_url: value("TASKER_TEST_DATABASE_URL").unwrap_or_default(),
        });
        assert!(
            out.status.success() && cluster.as_ref().is_some_and(|c| !c.admin_url.is_empty()),
            "pg-test-server ensure failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.unwrap()
    }

    fn pg_ctl(&self) -> PathBuf {
        let version = std::fs::read_to_string(self.dir.join("data/PG_VERSION")).expect("PG_VERSION");
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{}/bin/pg_ctl", version.trim()));
        assert!(bin.exists(), "{} not found", bin.display());
        bin
    }

    /// Runs `pg_ctl -D DIR/data -l DIR/server.log ARGS` as the `postgres` user. (Its
    /// output goes to the log: a server started by pg_ctl keeps pg_ctl's stdout open.)
    fn pg_ctl_run(&self, args: &[&str]) {
        let log = self.dir.join("server.log");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.pg_ctl())
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(
            status.success(),
            "pg_ctl {args:?} failed ({status}); log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl restart -m fast -w`: ends every session, starts again with the same
    /// options (postmaster.opts).
    fn restart(&self) {
        self.pg_ctl_run(&["-m", "fast", "-w", "-t", "60", "restart"]);
    }

    /// `pg_ctl stop -m fast -w`: ends every session; nothing listens until [`Cluster::start_again`].
    fn stop(&self) {
        self.pg_ctl_run(&["-m", "fast", "-w", "-t", "60", "stop"]);
    }

    /// Starts the stopped server with the options pg-test-server gave it.
    fn start_again(&self) {
        let port = self
            .admin_url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .expect("port in the admin URL");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.dir.display()
        );
        self.pg_ctl_run(&["-w", "-t", "60", "-o", &options, "start"]);
    }

    /// Creates a database and returns its URL.
    async fn create_database(&self, name: &str) -> String {
        let admin = probe(&self.admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create the database");
        admin.close().await;
        support::pg::with_database(&self.admin_url, name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new(Path::new(REPO).join("scripts/pg-test-server"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "[reliability] could not stop the throwaway cluster in {} ({}):\n{}",
                self.dir.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!(
                "[reliability] could not run pg-test-server stop {}: {e}",
                self.dir.display()
            ),
        }
    }
}

/// Orchestrator + 2 workers on a database in a throwaway cluster of our own; 150
/// sleepy diamonds; `trouble` happens to the server once a quarter of them are
/// done. Then: every process is still alive, each one's LISTEN connection is back,
/// every task completes, the audit holds, and every process stops cleanly.
async fn survive_server_trouble(test: &str, trouble: impl FnOnce(&Cluster)) -> Audit {
    let started = Instant::now();
    let cluster = Cluster::start();
    let url = cluster.create_database("tasker_reliability").await;
    eprintln!("[reliability] {test}: throwaway cluster up in {:?}", started.elapsed());
    let (dir, template) = sleepy_templates();
    let mut fleet = Fleet::default();
    fleet.add(orchestrator("orchestrator", &url, dir.path()));
    let n = 150;
    let tasks = create_tasks(&url, &template, n, |k| json!({ "k": k })).await;
    fleet.add(worker("worker-1", &url, "reliab"));
    fleet.add(worker("worker-2", &url, "reliab"));
    let pool = probe(&url).await;

    wait_mid_run(&pool, &fleet, n, random_fraction(test), 1).await;
    let trouble_at = Instant::now();
    trouble(&cluster);
    eprintln!(
        "[reliability] {test}: server back after {:?} ({:?} in)",
        trouble_at.elapsed(),
        started.elapsed()
    );
    // The probe's connections died with the server; its pool opens new ones.
    wait_all_complete(&pool, &fleet, n).await;
    eprintln!(
        "[reliability] {test}: all tasks complete {:?} after the trouble began",
        trouble_at.elapsed()
    );
    for p in fleet.procs.iter_mut() {
        assert!(
            p.is_alive(),
            "{} did not survive the server going away; stderr:\n{}",
            p.name,
            p.stderr()
        );
    }
    // Every process opened its LISTEN connection again (polling alone would hide a
    // lost one: tasks would still complete, only wake-ups would be late).
    let listeners = fleet.procs.len() as i64;
    wait_until(
        &pool,
        &fleet,
        &format!("{listeners} LISTEN connections on the database again"),
        || async {
            let n = scalar(
                &pool,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            )
            .await?;
            Ok(n == listeners)
        },
    )
    .await;

    let audit = audit(&url, &pool, &tasks, sleepy_result).await;
    eprintln!(
        "[reliability] {test}: {} lease_expired event(s) over {} steps",
        audit.lease_expired, audit.steps
    );
    fleet.assert_alive_and_stop(&[]);
    pool.close().await;
    drop(fleet);
    drop(cluster);
    eprintln!("[reliability] {test}: {:?}", started.elapsed());
    audit
}

fn root_or_skip(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        eprintln!(
            "[reliability] {test}: SKIPPED: not running as root, so this test cannot start (and restart) a \
             throwaway PostgreSQL cluster of its own; CI runs it as root"
        );
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_mid_run_loses_nothing() {
    let test = "a_postgresql_restart_mid_run_loses_nothing";
    if !root_or_skip(test) {
        return;
    }
    let _serial = LOCK.lock().await;
    survive_server_trouble(test, |cluster| cluster.restart()).await;
}

/// Down for 3 s, longer than a lease (2 s): every lease held when the server went
/// away has run out when it comes back, and claims, result writes, lease
/// extensions and sweeps all wait for it (a pool acquire waits up to 10 s, so the
/// result writer does not exhaust its 5 attempts). After the outage a held result
/// and the sweep race for each such step; either outcome must keep the audit whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_longer_than_a_lease_loses_nothing() {
    let test = "a_postgresql_outage_longer_than_a_lease_loses_nothing";
    if !root_or_skip(test) {
        return;
    }
    let _serial = LOCK.lock().await;
    let audit = survive_server_trouble(test, |cluster| {
        cluster.stop();
        std::thread::sleep(Duration::from_secs(3));
        cluster.start_again();
    })
    .await;
    // Whether a result or the sweep lands first after the outage is a race:
    // either is fine, so this is only reported.
    note_lease_expiry(
        test,
        &audit,
        "every result held during the outage was written before a sweep took its step back",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orchestrators_and_three_workers_finalize_each_task_once() {
    let _serial = LOCK.lock().await;
    let started = Instant::now();
    let db = support::pg::test_database().await;
    let examples = examples_dir();
    let mut fleet = Fleet::default();
    fleet.add(orchestrator("orchestrator-1", &db.url, &examples));
    fleet.add(orchestrator("orchestrator-2", &db.url, &examples));
    for i in 1..=3 {
        fleet.add(worker(&format!("worker-{i}"), &db.url, "examples"));
    }
    let pool = probe(&db.url).await;
    let n = 500;
    // n^16 must fit in an i64: n in 0..=15.
    let tasks = create_tasks(&db.url, &examples.join("diamond.yaml"), n, |k| json!({ "n": k % 16 })).await;
    wait_all_complete(&pool, &fleet, n).await;
    eprintln!("[reliability] {n} diamond tasks complete {:?} in", started.elapsed());

    let audit = audit(&db.url, &pool, &tasks, diamond_result).await;
    assert_eq!(audit.steps, 4 * n);
    note_spurious_lease_expiry("two_orchestrators_and_three_workers_finalize_each_task_once", &audit);
    let finalizers = scalar(
        &pool,
        "SELECT count(DISTINCT processor) FROM task_transitions WHERE to_state = 'complete'",
    )
    .await
    .unwrap();
    eprintln!("[reliability] tasks were finalized by {finalizers} different process(es)");
    fleet.assert_alive_and_stop(&[]);
    pool.close().await;
    eprintln!(
        "[reliability] two_orchestrators_and_three_workers_finalize_each_task_once: {:?}",
        started.elapsed()
    );
}

/// The `database` circuit breaker of a real `tasker orchestrator`, seen through its
/// HTTP API: the server stops, so the breaker opens (`/ready` says so and answers
/// 503, task creation gets 503 with Retry-After, the metric reads 2); the server
/// comes back, so the breaker closes and tasks are created again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_opens_the_breaker_and_its_return_closes_it() {
    let test = "a_database_outage_opens_the_breaker_and_its_return_closes_it";
    if !root_or_skip(test) {
        return;
    }
    let _serial = LOCK.lock().await;
    let started = Instant::now();
    let cluster = Cluster::start();
    let url = cluster.create_database("tasker_breaker").await;
    let (dir, _template) = sleepy_templates();
    let env = [
        ("TASKER_API_BIND", "127.0.0.1:0"),
        ("TASKER_BREAKER_DATABASE_FAILURE_THRESHOLD", "2"),
        ("TASKER_BREAKER_DATABASE_OPEN_MS", "500"),
        ("TASKER_BREAKER_DATABASE_SUCCESS_THRESHOLD", "1"),
        ("TASKER_BREAKER_DATABASE_CALL_TIMEOUT_MS", "1000"),
        ("TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS", "100"),
    ];
    let mut orchestrator = Proc::spawn(
        "orchestrator",
        tasker_command(
            &["orchestrator", "--templates", dir.path().to_str().unwrap()],
            &url,
            &env,
        ),
        "orchestrator running",
        PATIENCE,
    );
    let base = orchestrator
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix("api listening on ").map(str::to_string))
        .expect("the orchestrator says where its API listens");
    let client = reqwest::Client::new();
    let ready = || async {
        let resp = client.get(format!("{base}/ready")).send().await.expect("GET /ready");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.expect("/ready is JSON"))
    };
    let create = || async {
        client
            .post(format!("{base}/v1/tasks"))
            .json(&json!({"namespace": "reliab", "name": "sleepy_diamond", "context": {"k": 1}}))
            .send()
            .await
            .expect("POST /v1/tasks")
    };
    let scrape = || async {
        let resp = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        resp.text().await.expect("metrics text")
    };
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(create().await.status().as_u16(), 201);

    cluster.stop();
    let (status, open) = ready_until(ready, "the breaker never opened", |_, body| {
        body["breakers"][0]["state"] == "open"
    })
    .await;
    assert_eq!(status, 503, "{open}");
    assert_eq!(open["database"]["ok"], false, "{open}");
    eprintln!("[reliability] {test}: breaker open {:?} in: {open}", started.elapsed());
    let refused = create().await;
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let metrics = scrape().await;
    assert!(
        metrics.contains("tasker_breaker_transitions_total{breaker=\"database\",to=\"open\"}"),
        "{metrics}"
    );

    cluster.start_again();
    let (_, back) = ready_until(ready, "the breaker never closed", |status, _| status == 200).await;
    assert_eq!(back["breakers"][0]["state"], "closed", "{back}");
    let created = create().await;
    assert_eq!(created.status().as_u16(), 201, "tasks are created again");
    let metrics = scrape().await;
    assert!(
        metrics.contains("tasker_breaker_state{breaker=\"database\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasker_breaker_transitions_total{breaker=\"database\",to=\"closed\"}"),
        "{metrics}"
    );
    let (code, stderr) = orchestrator.terminate();
    assert_eq!(code, 0, "{stderr}");
    drop(cluster);
    eprintln!("[reliability] {test}: {:?}", started.elapsed());
}

/// Asks `/ready` (through `ready`) every 50 ms until `done` says yes; fails after
/// [`PATIENCE`] with `what` and the last answer.
async fn ready_until<F, Fut>(ready: F, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = ready().await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
