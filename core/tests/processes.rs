//! Separate processes over one database: `tasker orchestrator`, `tasker worker` and
//! `tasker task create`, each the real binary, sharing one SQLite file in a temp
//! folder (no PostgreSQL needed). Long-running children are stopped with
//! `kill -TERM`, and killed by a guard if a test fails; every wait is bounded.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::process::{tasker_command, TaskerProcess as Proc};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// How long any single wait in these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// A scratch folder with its own SQLite database.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("tasker.db").display())
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `tasker ARGS --database-url …` with a clean environment plus `env`, run in
    /// the scratch folder. Other processes' commits are found by polling on SQLite,
    /// so the polling interval is kept short.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = tasker_command(args, &self.url(), &[("TASKER_POLL_INTERVAL_MS", "50")]);
        cmd.current_dir(self.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a short-lived `tasker` command to completion.
    fn run(&self, args: &[&str]) -> Out {
        let out = self.command(args, &[]).output().expect("the tasker binary runs");
        Out {
            code: out
                .status
                .code()
                .unwrap_or_else(|| panic!("tasker was killed by a signal: {:?}", out.status)),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts a long-running `tasker` command and waits until its stderr says `ready`.
    fn spawn(&self, args: &[&str], env: &[(&str, &str)], ready: &str) -> Proc {
        Proc::spawn(
            &format!("tasker {}", args.join(" ")),
            self.command(args, env),
            ready,
            PATIENCE,
        )
    }

    /// `task show UUID`, parsed.
    fn show(&self, uuid: &str) -> Value {
        let out = self.run(&["task", "show", uuid]);
        assert_eq!(out.code, 0, "task show failed:\n{out}");
        out.json()
    }

    /// Polls `task show` until `pred` holds.
    fn show_until(&self, uuid: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let task = self.show(uuid);
            if pred(&task) {
                return task;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; last:\n{task:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What one short-lived invocation produced.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn step<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {task:#}"))
}

/// A folder with one template: a single `sleep` step of `ms` milliseconds.
fn sleep_templates(scratch: &Scratch, ms: u64) -> PathBuf {
    let dir = scratch.path().join("templates");
    std::fs::create_dir(&dir).unwrap();
    let yaml = format!(
        "namespace: sleepy\nname: nap\nversion: 1.0.0\nidentity_strategy: always_unique\n\
         steps:\n  - name: nap\n    handler:\n      callable: sleep\n      initialization: {{ ms: {ms} }}\n"
    );
    std::fs::write(dir.join("nap.yaml"), yaml).unwrap();
    dir
}

#[test]
fn an_orchestrator_registers_templates_and_a_worker_process_runs_a_task_created_by_name() {
    let s = Scratch::new();
    let mut orchestrator = s.spawn(&["orchestrator", "--templates", EXAMPLES], &[], "orchestrator running");
    assert!(
        orchestrator.stderr().contains("registered examples/linear@1.0.0"),
        "{}",
        orchestrator.stderr()
    );

    // Created from the database (no --templates), before any worker runs.
    let created = s.run(&["task", "create", "examples/linear", "--context", r#"{"n":6}"#]);
    assert_eq!(created.code, 0, "{created}");
    let created = created.json();
    assert_eq!(created["created"], true, "{created}");
    let uuid = created["task_uuid"].as_str().expect("task_uuid").to_string();

    let mut worker = s.spawn(&["worker", "--namespace", "examples"], &[], "worker running");
    let task = s.show_until(&uuid, "the task to complete", |t| t["status"] == "complete");
    assert_eq!(step(&task, "step_4")["result"]["value"], 2821109907456i64, "{task:#}");

    // --wait polls the store and prints the final task.
    let waited = s.run(&[
        "task",
        "create",
        "examples/linear",
        "--context",
        r#"{"n":6}"#,
        "--wait",
        "--timeout-secs",
        "30",
    ]);
    assert_eq!(waited.code, 0, "{waited}");
    let task = waited.json();
    assert_eq!(task["status"], "complete", "{waited}");
    assert_eq!(step(&task, "step_4")["result"]["value"], 2821109907456i64, "{waited}");
    assert!(
        task["transitions"].is_array(),
        "--wait prints the task as `task show` does:\n{waited}"
    );

    let (code, stderr) = worker.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("drained: 0") && stderr.contains("handed back: 0"),
        "{stderr}"
    );
    let (code, stderr) = orchestrator.terminate();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn sigterm_drains_a_running_step_within_the_grace_period() {
    let s = Scratch::new();
    let templates = sleep_templates(&s, 1500);
    let created = s.run(&[
        "task",
        "create",
        "sleepy/nap",
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(created.code, 0, "{created}");
    let uuid = created.json()["task_uuid"].as_str().unwrap().to_string();

    let mut worker = s.spawn(&["worker", "--namespace", "sleepy"], &[], "worker running");
    s.show_until(&uuid, "the step to start", |t| {
        step(t, "nap")["status"] == "in_progress"
    });
    let (code, stderr) = worker.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("drained: 1") && stderr.contains("handed back: 0"),
        "{stderr}"
    );
    let task = s.show(&uuid);
    assert_eq!(step(&task, "nap")["status"], "complete", "{task:#}");
    assert_eq!(task["status"], "complete", "{task:#}");
}

#[test]
fn sigterm_with_a_short_grace_hands_the_running_step_back_without_burning_an_attempt() {
    let s = Scratch::new();
    let templates = sleep_templates(&s, 1500);
    let created = s.run(&[
        "task",
        "create",
        "sleepy/nap",
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(created.code, 0, "{created}");
    let uuid = created.json()["task_uuid"].as_str().unwrap().to_string();

    let mut worker = s.spawn(
        &["worker", "--namespace", "sleepy"],
        &[("TASKER_SHUTDOWN_GRACE_MS", "100")],
        "worker running",
    );
    s.show_until(&uuid, "the step to start", |t| {
        step(t, "nap")["status"] == "in_progress"
    });
    let (code, stderr) = worker.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("handed back: 1"), "{stderr}");
    let task = s.show(&uuid);
    let nap = step(&task, "nap");
    assert_eq!(
        (nap["status"].as_str(), nap["attempts"].as_u64()),
        (Some("enqueued"), Some(0)),
        "{task:#}"
    );
}

#[test]
fn task_create_rejects_unknown_templates_and_bad_contexts_with_exit_2() {
    let s = Scratch::new();
    let unknown = s.run(&["task", "create", "examples/nope", "--context", "{}"]);
    assert_eq!(unknown.code, 2, "{unknown}");
    assert!(
        unknown.stderr.contains("examples/nope") && unknown.stderr.contains("--templates"),
        "{unknown}"
    );
    assert!(unknown.stdout.trim().is_empty(), "{unknown}");

    let bad = s.run(&[
        "task",
        "create",
        "examples/linear",
        "--context",
        r#"{"n":"six"}"#,
        "--templates",
        EXAMPLES,
    ]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("/n") && bad.stderr.contains("integer"), "{bad}");

    let bad_key = s.run(&["task", "create", "no-slash"]);
    assert_eq!(bad_key.code, 2, "{bad_key}");
}

#[test]
fn the_same_idempotency_key_returns_the_same_task() {
    let s = Scratch::new();
    let args = [
        "task",
        "create",
        "examples/linear",
        "--context",
        r#"{"n":2}"#,
        "--idempotency-key",
        "k",
        "--templates",
        EXAMPLES,
    ];
    let first = s.run(&args);
    assert_eq!(first.code, 0, "{first}");
    let second = s.run(&args);
    assert_eq!(second.code, 0, "{second}");
    let (first, second) = (first.json(), second.json());
    assert_eq!(first["created"], true);
    assert_eq!(second["created"], false);
    assert_eq!(first["task_uuid"], second["task_uuid"]);
}

#[test]
fn an_orchestrator_with_invalid_templates_exits_2_listing_every_problem() {
    let s = Scratch::new();
    let dir = s.path().join("bad");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("one.yaml"),
        "namespace: x\nname: one\nversion: 1.0.0\nsteps: [{name: a}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("two.yaml"),
        "namespace: x\nname: two\nversion: nope\nsteps: []\n",
    )
    .unwrap();
    let out = s.run(&["orchestrator", "--templates", dir.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("one.yaml") && out.stderr.contains("two.yaml"),
        "{out}"
    );
}

/// Processes opening one NEW SQLite file at the same moment (the polyglot demo
/// starts its four workers so) all open it: none fails on the first migration that
/// another one applied meanwhile. Several rounds, each on a fresh file, because one
/// round may not make the processes overlap.
#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    const PROCESSES: usize = 4;
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let s = Scratch::new();
        let children: Vec<std::process::Child> = (0..PROCESSES)
            .map(|_| {
                s.command(&["task", "list"], &[])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("the tasker binary starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("tasker exits");
            assert!(
                out.status.success(),
                "round {round}: `tasker task list` on a new file failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
