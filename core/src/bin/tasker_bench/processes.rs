//! `tasker-bench --postgres ADMIN_URL --processes`: the PostgreSQL figures with the
//! orchestrator and the worker as separate processes on this machine.
//!
//! Each phase gets a fresh database, a `tasker orchestrator --templates DIR` and one
//! `tasker worker --namespace examples --namespace bench` (the `tasker` binary next to
//! `tasker-bench`). The bench process submits tasks through an in-process
//! `TaskRequest` and watches them through the Store API:
//! - `proc_linear_p50_ms` / `proc_linear_p95_ms`: submit → complete of the 4-step
//!   linear example, one task at a time, seen as a user in another process sees it:
//!   the task's `tasker_task_settled` notification, then one `task_get` (a re-read
//!   every 100 ms covers a lost notification);
//! - `proc_throughput_steps_per_s`: one-step tasks created up front, then run by the
//!   worker process, timed from the worker's spawn (its start-up is included) until
//!   every task is complete: the last-created task is read every 20 ms, and once it
//!   is complete a `task_list` (state `complete`, offset N-1, limit 1) confirms the
//!   N-th complete task (that probe costs the server ~15 ms, so it runs only then);
//! - `proc_round_trips_per_step`: the worker's and orchestrator's store counters (they
//!   print them when they stop) plus the bench's task creation, over the steps.

use super::{percentile, template, Database, LINEAR_YAML, ONE_STEP_YAML};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tasker_core::clock;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::{TaskRequest, TaskSubmission};
use tasker_core::state::TaskState;
use tasker_core::store::{self, SharedStore, StoreOptions, TaskListParams};
use tasker_core::template::TemplateRegistry;

type BoxError = Box<dyn std::error::Error>;

/// How long start-up, a single task, or the whole throughput run may take.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// A `tasker` child process; killed (SIGKILL) and reaped on drop if still running.
struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
    name: &'static str,
}

impl Proc {
    /// Starts `tasker ARGS --database-url URL` and waits until its stderr says `ready`.
    fn spawn(tasker: &Path, name: &'static str, url: &str, args: &[&str], ready: &str) -> Result<Proc, BoxError> {
        let mut cmd = Command::new(tasker);
        cmd.args(args).arg("--database-url").arg(url);
        // The children take their settings from their defaults, not from our environment.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("TASKER_") || key.starts_with("RUST_LOG") {
                cmd.env_remove(key);
            }
        }
        // Any free port for an orchestrator's HTTP API.
        cmd.env("TASKER_API_BIND", "127.0.0.1:0");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().ok_or("no stderr pipe")?;
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut proc = Proc { child, stderr, name };
        let start = Instant::now();
        while !proc.stderr().contains(ready) {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(format!("{name} exited during start-up ({status}); stderr:\n{}", proc.stderr()).into());
            }
            if start.elapsed() > START_PATIENCE {
                return Err(format!("{name} never printed `{ready}`; stderr:\n{}", proc.stderr()).into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(proc)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGTERM, then waits for a clean exit (code 0); returns its stderr.
    fn terminate(mut self) -> Result<String, BoxError> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            return Err(format!("kill -TERM {pid} ({}) failed", self.name).into());
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                std::thread::sleep(Duration::from_millis(50)); // the reader thread catches up
                if status.code() != Some(0) {
                    return Err(format!(
                        "{} did not stop cleanly ({status}); stderr:\n{}",
                        self.name,
                        self.stderr()
                    )
                    .into());
                }
                return Ok(self.stderr());
            }
            if start.elapsed() > START_PATIENCE {
                return Err(format!("{} did not exit after SIGTERM; stderr:\n{}", self.name, self.stderr()).into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The round trips a stopped child reported (`store: N round trip(s), …`).
fn reported_round_trips(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("store: ")?.split(' ').next()?.parse().ok())
}

/// The `tasker` binary next to this one.
fn tasker_binary() -> Result<PathBuf, BoxError> {
    let path = std::env::current_exe()?.with_file_name("tasker");
    if !path.is_file() {
        return Err(format!(
            "`{}` not found: --processes runs the `tasker` binary next to tasker-bench; build it with the same profile \
             (`cargo build --release --bin tasker`, or `cargo build --bin tasker` for a debug tasker-bench)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// A running phase: its database, the two children and the bench's own store.
struct Phase {
    db: Database,
    orchestrator: Option<Proc>,
    worker: Option<Proc>,
    store: SharedStore,
    requests: TaskRequest,
}

impl Phase {
    async fn open(admin: &str, name: &str) -> Result<Phase, BoxError> {
        let db = Database::new(&Some(admin.to_string()), name).await?;
        // LISTEN for settled tasks (the linear phase waits on them).
        let store = store::open_with(&db.url, StoreOptions { listen: true }).await?;
        let requests = TaskRequest::new(
            store.clone(),
            clock::system(),
            Arc::new(RwLock::new(TemplateRegistry::new())),
            "bench".into(),
        );
        Ok(Phase {
            db,
            orchestrator: None,
            worker: None,
            store,
            requests,
        })
    }

    fn start_orchestrator(&mut self, tasker: &Path, templates: &Path) -> Result<(), BoxError> {
        let dir = templates.to_str().ok_or("template dir is not UTF-8")?;
        self.orchestrator = Some(Proc::spawn(
            tasker,
            "orchestrator",
            &self.db.url,
            &["orchestrator", "--templates", dir],
            "orchestrator running",
        )?);
        Ok(())
    }

    fn start_worker(&mut self, tasker: &Path) -> Result<(), BoxError> {
        let args = ["worker", "--namespace", "examples", "--namespace", "bench"];
        self.worker = Some(Proc::spawn(tasker, "worker", &self.db.url, &args, "worker running")?);
        Ok(())
    }

    /// Stops the children with SIGTERM and drops the database; returns the round trips
    /// the children reported (None if one did not report).
    async fn finish(mut self) -> Result<Option<u64>, BoxError> {
        let mut trips = Some(0);
        let mut first_error = None;
        for proc in [self.worker.take(), self.orchestrator.take()].into_iter().flatten() {
            match proc.terminate() {
                Ok(stderr) => trips = trips.and_then(|t| reported_round_trips(&stderr).map(|r| t + r)),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        self.store.close().await;
        self.db.drop_now().await;
        match first_error {
            Some(e) => Err(e),
            None => Ok(trips),
        }
    }
}

/// Runs the measurement; `quick` uses small sizes.
pub async fn run(admin: &str, quick: bool) -> Result<(), BoxError> {
    let tasker = tasker_binary()?;
    let (warmup, linear_tasks, throughput_tasks) = if quick { (3, 20, 500) } else { (20, 200, 20_000) };
    let templates = tempfile::tempdir()?;
    std::fs::write(templates.path().join("linear.yaml"), LINEAR_YAML)?;
    std::fs::write(templates.path().join("one_step.yaml"), ONE_STEP_YAML)?;
    println!(
        "# tasker-bench{} --processes (PostgreSQL; orchestrator and one worker as separate processes, {} cores)",
        if quick { " --quick" } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // 1. Linear latency, one task at a time.
    let mut phase = Phase::open(admin, "proc_linear").await?;
    phase.start_orchestrator(&tasker, templates.path())?;
    phase.start_worker(&tasker)?;
    let linear = template(LINEAR_YAML);
    let mut latencies = Vec::with_capacity(linear_tasks);
    let mut settled = phase
        .store
        .task_settled_notifications()
        .ok_or("the PostgreSQL store has no settled-task notifications")?;
    let measured = async {
        for i in 0..warmup + linear_tasks {
            // Drop the previous tasks' notifications.
            while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = settled.try_recv() {}
            let t0 = Instant::now();
            let sub = TaskSubmission::new(TemplateRef::Loaded(linear.clone()), json!({ "n": (i % 7) + 2 }));
            let created = phase
                .requests
                .create_many(std::slice::from_ref(&sub))
                .await
                .pop()
                .ok_or("no answer")??;
            let state = loop {
                let task = phase.store.task_get(created.task_uuid).await?.ok_or("task vanished")?;
                if task.state.is_terminal() || task.state == TaskState::BlockedByFailures {
                    break task.state;
                }
                if t0.elapsed() > START_PATIENCE {
                    return Err::<(), BoxError>(
                        format!("linear task still {} after {:?}", task.state, START_PATIENCE).into(),
                    );
                }
                loop {
                    match tokio::time::timeout(Duration::from_millis(100), settled.recv()).await {
                        Ok(Ok(t)) if t != created.task_uuid => continue,
                        _ => break, // ours, lagged, closed or the 100 ms re-read
                    }
                }
            };
            if state != TaskState::Complete {
                return Err(format!("linear task ended {state}").into());
            }
            if i >= warmup {
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = measured {
        let _ = phase.finish().await; // stop the children and drop the database
        return Err(e);
    }
    phase.finish().await?;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&latencies, 0.50);
    let p95 = percentile(&latencies, 0.95);

    // 2. Throughput: N one-step tasks created up front, then the worker process starts.
    let mut phase = Phase::open(admin, "proc_throughput").await?;
    let one_step = template(ONE_STEP_YAML);
    let create_trips_before = phase.store.round_trip_count();
    let mut last_uuid = None;
    for chunk in (0..throughput_tasks).collect::<Vec<_>>().chunks(500) {
        let subs: Vec<TaskSubmission> = chunk
            .iter()
            .map(|i| TaskSubmission::new(TemplateRef::Loaded(one_step.clone()), json!({ "i": i })))
            .collect();
        for r in phase.requests.create_many(&subs).await {
            last_uuid = Some(r?.task_uuid);
        }
    }
    let create_trips = phase.store.round_trip_count() - create_trips_before;
    phase.start_orchestrator(&tasker, templates.path())?;
    let t_run = Instant::now();
    phase.start_worker(&tasker)?;
    let last_created = last_uuid.ok_or("no task was created")?;
    let done_probe = TaskListParams {
        state: Some(TaskState::Complete),
        namespace: None,
        limit: 1,
        offset: throughput_tasks as u32 - 1,
    };
    let finished = async {
        loop {
            let last_done = phase
                .store
                .task_get(last_created)
                .await?
                .is_some_and(|t| t.state == TaskState::Complete);
            if last_done && !phase.store.task_list(done_probe.clone()).await?.is_empty() {
                return Ok::<(), BoxError>(());
            }
            if t_run.elapsed() > Duration::from_secs(600) {
                return Err("throughput run did not finish in 10 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    .await;
    if let Err(e) = finished {
        let _ = phase.finish().await;
        return Err(e);
    }
    let run_s = t_run.elapsed().as_secs_f64();
    let child_trips = phase.finish().await?;
    let steps_per_s = throughput_tasks as f64 / run_s;

    println!("proc_linear_tasks={linear_tasks}");
    println!("proc_linear_p50_ms={p50:.3}");
    println!("proc_linear_p95_ms={p95:.3}");
    println!("proc_linear_wait=notify");
    println!("proc_throughput_tasks={throughput_tasks}");
    println!("proc_throughput_steps_per_s={steps_per_s:.0}");
    println!("proc_throughput_poll_interval_ms=20");
    match child_trips {
        Some(t) => println!(
            "proc_round_trips_per_step={:.3}",
            (t + create_trips) as f64 / throughput_tasks as f64
        ),
        None => println!("proc_round_trips_per_step=not measured (a child did not report its store counters)"),
    }
    println!();
    println!("# against the targets (issue 3, PostgreSQL)");
    println!("linear P50 {p50:.2} ms vs ≤ 10 ms: {:.2}× the budget", p50 / 10.0);
    println!(
        "throughput {steps_per_s:.0} steps/s vs ≥ 5000: {:.2}× the target",
        steps_per_s / 5000.0
    );
    println!("(throughput is timed from the worker's spawn, start-up included; round trips per step count the");
    println!(" worker's and orchestrator's store counters, idle polls and sweeps included, plus task creation)");
    if quick {
        println!("(--quick: small sizes, debug builds; figures are a smoke test, not a measurement)");
    }
    Ok(())
}
