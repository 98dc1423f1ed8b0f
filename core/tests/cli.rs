//! Black-box tests of the `tasker` command line: each test runs the real binary
//! in a fresh temporary folder with its own SQLite database, and checks exit
//! codes, the JSON on stdout and the messages on stderr.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// What one `tasker` invocation produced.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// stdout parsed as JSON; panics with the whole output when it is not JSON.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// The lines of stderr that are error messages.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("error:")).collect()
    }

    /// Asserts exit code 2 with exactly one `error:` line, and returns the whole stderr.
    fn bad_input(&self) -> &str {
        assert_eq!(self.code, 2, "expected exit 2 (bad input):\n{self}");
        assert_eq!(
            self.error_lines().len(),
            1,
            "expected exactly one error message:\n{self}"
        );
        assert!(
            self.stdout.trim().is_empty(),
            "bad input should print nothing on stdout:\n{self}"
        );
        &self.stderr
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

/// Runs `tasker ARGS` in `dir` with a clean environment (no TASKER_* or RUST_* variables).
fn tasker_in(dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasker"));
    cmd.args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("TASKER_") || key.starts_with("RUST_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("the tasker binary runs");
    Out {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("tasker was killed by a signal: {:?}", out.status)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temporary folder holding the database and any generated templates.
struct Sandbox {
    dir: tempfile::TempDir,
    db_url: String,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}/x.db", dir.path().display());
        Self { dir, db_url }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tasker ARGS --database-url <this sandbox's db>`.
    fn tasker(&self, args: &[&str]) -> Out {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", &self.db_url]);
        tasker_in(self.path(), &all)
    }

    /// Writes `yaml` to `name` in the sandbox and returns its path as a string.
    fn template(&self, name: &str, yaml: &str) -> String {
        let path = self.path().join(name);
        std::fs::write(&path, yaml).expect("write template");
        path.to_str().expect("utf-8 path").to_string()
    }

    /// `tasker task list --json`, parsed.
    fn task_list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["task", "list", "--json"];
        args.extend_from_slice(extra);
        let out = self.tasker(&args);
        assert_eq!(out.code, 0, "task list failed:\n{out}");
        out.json()
            .as_array()
            .unwrap_or_else(|| panic!("task list --json is not an array:\n{out}"))
            .clone()
    }

    /// Asserts the database holds no task.
    fn assert_no_tasks(&self) {
        let tasks = self.task_list(&[]);
        assert!(tasks.is_empty(), "expected no task in the database, found {tasks:#?}");
    }

    /// Runs an example template with `context`.
    fn run_example(&self, name: &str, context: &str, extra: &[&str]) -> Out {
        let file = example(name);
        let mut args = vec!["run", file.to_str().unwrap(), "--context", context];
        args.extend_from_slice(extra);
        self.tasker(&args)
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(EXAMPLES).join(format!("{name}.yaml"))
}

/// The step called `name` in a task JSON.
fn step<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["steps"]
        .as_array()
        .expect("steps is an array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step `{name}` in {task:#}"))
}

/// The `value` a step produced.
fn value(task: &Value, name: &str) -> i64 {
    step(task, name)["result"]["value"]
        .as_i64()
        .unwrap_or_else(|| panic!("step `{name}` has no integer value: {task:#}"))
}

/// Asserts a run completed (exit 0, task and every step complete) and returns the task JSON.
fn completed(out: &Out) -> Value {
    assert_eq!(out.code, 0, "expected the task to complete:\n{out}");
    let task = out.json();
    assert_eq!(task["status"], "complete", "{out}");
    for s in task["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "complete", "step {} not complete:\n{out}", s["name"]);
    }
    task
}

/// Asserts a run ended in error (exit 1, task status `error`) and returns the task JSON.
fn errored(out: &Out) -> Value {
    assert_eq!(out.code, 1, "expected the task to end in error:\n{out}");
    let task = out.json();
    assert_eq!(task["status"], "error", "{out}");
    task
}

/// A one-template file with the given steps (YAML list items, indented by two).
fn template_yaml(name: &str, extra_top: &str, steps: &str) -> String {
    format!("namespace: t\nname: {name}\nversion: 1.0.0\n{extra_top}steps:\n{steps}")
}

// ---------------------------------------------------------------- 1. examples

#[test]
fn linear_example_computes_n_to_the_16th_and_exits_0() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("linear", r#"{"n":6}"#, &[]));
    assert_eq!(value(&task, "step_1"), 36);
    assert_eq!(value(&task, "step_4"), 2821109907456);
    assert_eq!(task["steps"].as_array().unwrap().len(), 4);
}

#[test]
fn diamond_example_joins_both_branches_into_43046721() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("diamond", r#"{"n":3}"#, &[]));
    assert_eq!(value(&task, "start"), 9);
    assert_eq!(value(&task, "left"), 81);
    assert_eq!(value(&task, "right"), 81);
    assert_eq!(value(&task, "end"), 43046721);
}

#[test]
fn tree_example_converges_four_leaves_into_their_sum() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("tree", r#"{"n":2}"#, &[]));
    assert_eq!(value(&task, "root"), 4);
    for branch in ["branch_a", "branch_b"] {
        assert_eq!(value(&task, branch), 16);
    }
    for leaf in ["leaf_a1", "leaf_a2", "leaf_b1", "leaf_b2"] {
        assert_eq!(value(&task, leaf), 256);
    }
    assert_eq!(value(&task, "converge"), 1024);
}

#[test]
fn mixed_dag_example_gives_the_documented_values() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("mixed_dag", r#"{"n":2}"#, &[]));
    let expected = [
        ("a", 4),
        ("b", 16),
        ("c", 16),
        ("d", 32),
        ("e", 256),
        ("f", 288),
        ("g", 82944),
    ];
    for (name, v) in expected {
        assert_eq!(value(&task, name), v, "step {name}");
    }
    let task = completed(&sb.run_example("mixed_dag", r#"{"n":3}"#, &["--quiet"]));
    assert_eq!(value(&task, "g"), 45198729);
}

#[test]
fn conditional_approval_example_runs_the_approvals_its_amount_needs() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("conditional_approval", r#"{"amount":7500}"#, &[]));
    let names: Vec<&str> = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "validate_request",
            "route_approval",
            "manager_approval",
            "finance_approval",
            "finalize_approval"
        ]
    );
    assert_eq!(
        step(&task, "finalize_approval")["result"],
        serde_json::json!({"approved": true, "approvals": ["finance", "manager"], "amount": 7500})
    );
}

#[test]
fn csv_batch_example_sums_1000_rows_in_five_batches() {
    let sb = Sandbox::new();
    let task = completed(&sb.run_example("csv_batch", r#"{"rows":1000}"#, &["--quiet"]));
    assert_eq!(task["steps"].as_array().unwrap().len(), 7);
    assert_eq!(step(&task, "process_csv_batch_005")["result"]["rows"], 200);
    assert_eq!(
        step(&task, "aggregate_csv")["result"],
        serde_json::json!({"rows": 1000, "quantity": 5500, "revenue_cents": 3027700, "batches": 5})
    );
}

#[test]
fn retry_example_succeeds_on_the_third_attempt_of_fetch() {
    let sb = Sandbox::new();
    let out = sb.run_example("retry", r#"{"n":4}"#, &[]);
    let task = completed(&out);
    assert_eq!(step(&task, "fetch")["attempts"], 3);
    assert_eq!(value(&task, "fetch"), 16);
    assert_eq!(step(&task, "finish")["attempts"], 1);
    assert_eq!(value(&task, "finish"), 256);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("fetch") && l.contains("will retry")),
        "no retry progress line:\n{out}"
    );
}

#[test]
fn run_prints_progress_lines_on_stderr() {
    let sb = Sandbox::new();
    let out = sb.run_example("linear", r#"{"n":2}"#, &[]);
    completed(&out);
    for name in ["step_1", "step_2", "step_3", "step_4"] {
        assert!(
            out.stderr.lines().any(|l| l.contains(name) && l.contains("complete")),
            "no progress line saying {name} is complete:\n{out}"
        );
        assert!(
            out.stderr.lines().any(|l| l.contains(name) && l.contains("started")),
            "no start line for {name}:\n{out}"
        );
    }
    assert!(
        !out.stdout.contains("step_1 complete"),
        "progress must not go to stdout:\n{out}"
    );
}

#[test]
fn quiet_run_prints_no_progress_only_the_json() {
    let sb = Sandbox::new();
    let out = sb.run_example("linear", r#"{"n":2}"#, &["--quiet"]);
    let task = completed(&out);
    assert_eq!(value(&task, "step_4"), 65536);
    assert!(
        out.stderr.trim().is_empty(),
        "--quiet should print nothing on stderr:\n{out}"
    );
}

// ---------------------------------------------------------------- 2. by name

#[test]
fn run_resolves_namespace_slash_name_in_the_templates_folder() {
    let sb = Sandbox::new();
    let out = sb.tasker(&[
        "run",
        "examples/linear",
        "--templates",
        EXAMPLES,
        "--context",
        r#"{"n":6}"#,
        "-q",
    ]);
    let task = completed(&out);
    assert_eq!(task["name"], "linear");
    assert_eq!(value(&task, "step_4"), 2821109907456);
}

#[test]
fn run_resolves_namespace_slash_name_at_version_in_the_templates_folder() {
    let sb = Sandbox::new();
    let out = sb.tasker(&[
        "run",
        "examples/linear@1.0.0",
        "--templates",
        EXAMPLES,
        "--context",
        r#"{"n":6}"#,
        "-q",
    ]);
    let task = completed(&out);
    assert_eq!(task["version"], "1.0.0");
    assert_eq!(value(&task, "step_4"), 2821109907456);
}

#[test]
fn run_of_an_unknown_template_name_exits_2_naming_it() {
    let sb = Sandbox::new();
    let out = sb.tasker(&[
        "run",
        "examples/nope",
        "--templates",
        EXAMPLES,
        "--context",
        r#"{"n":1}"#,
    ]);
    let err = out.bad_input();
    assert!(
        err.contains("examples/nope"),
        "message should name the template:\n{out}"
    );
    // It is an unknown name in the folder, not a missing file: the message lists what the namespace has.
    assert!(
        err.contains("examples/linear"),
        "message should list the known templates of `examples`:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn run_of_an_unknown_template_name_at_version_exits_2_naming_it() {
    let sb = Sandbox::new();
    let out = sb.tasker(&[
        "run",
        "examples/linear@9.9.9",
        "--templates",
        EXAMPLES,
        "--context",
        r#"{"n":1}"#,
    ]);
    let err = out.bad_input();
    assert!(
        err.contains("examples/linear@9.9.9"),
        "message should name the template:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn run_by_name_without_templates_folder_exits_2_with_a_hint() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["run", "examples/linear", "--context", r#"{"n":1}"#]);
    let err = out.bad_input();
    assert!(
        err.contains("examples/linear"),
        "message should name the template:\n{out}"
    );
    assert!(
        err.contains("--templates"),
        "message should hint at --templates:\n{out}"
    );
}

#[test]
fn run_by_name_at_version_without_templates_folder_exits_2_with_a_hint() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["run", "examples/linear@1.0.0", "--context", r#"{"n":1}"#]);
    let err = out.bad_input();
    assert!(
        err.contains("--templates"),
        "message should hint at --templates:\n{out}"
    );
}

// ---------------------------------------------------------------- 3. bad input

#[test]
fn malformed_yaml_exits_2_naming_the_file_and_writes_nothing() {
    let sb = Sandbox::new();
    let file = sb.template(
        "broken.yaml",
        "namespace: t\nname: x\nversion: 1.0.0\nsteps:\n  - name: a\n   handler: {callable: noop}\n",
    );
    let out = sb.tasker(&["run", &file]);
    let err = out.bad_input();
    assert!(err.contains("broken.yaml"), "message should name the file:\n{out}");
    assert!(
        err.to_lowercase().contains("yaml"),
        "message should say the YAML is malformed:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn cyclic_template_exits_2_naming_the_cycle_and_its_steps() {
    let sb = Sandbox::new();
    let steps = "  - name: alpha\n    dependencies: [beta]\n    handler: {callable: noop}\n  - name: beta\n    dependencies: [alpha]\n    handler: {callable: noop}\n";
    let file = sb.template("cyclic.yaml", &template_yaml("cyclic", "", steps));
    let out = sb.tasker(&["run", &file]);
    let err = out.bad_input();
    assert!(err.contains("cycle"), "message should say `cycle`:\n{out}");
    assert!(
        err.contains("alpha") && err.contains("beta"),
        "message should name both steps:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn context_failing_the_input_schema_exits_2_naming_the_field_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.run_example("linear", r#"{"n":"six"}"#, &[]);
    let err = out.bad_input();
    assert!(err.contains("/n"), "message should name /n:\n{out}");
    sb.assert_no_tasks();
}

#[test]
fn context_out_of_the_schema_range_exits_2_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.run_example("linear", r#"{"n":1001}"#, &[]);
    let err = out.bad_input();
    assert!(err.contains("/n"), "message should name /n:\n{out}");
    sb.assert_no_tasks();
}

#[test]
fn non_json_context_exits_2_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.run_example("linear", "{n: 6", &[]);
    let err = out.bad_input();
    assert!(
        err.contains("--context") && err.contains("JSON"),
        "message should say the context is not JSON:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn unknown_handler_callable_exits_2_naming_step_and_callable() {
    let sb = Sandbox::new();
    let steps = "  - name: first\n    handler: {callable: noop}\n  - name: mystery\n    dependencies: [first]\n    handler: {callable: no_such_handler}\n";
    let file = sb.template("unknown_handler.yaml", &template_yaml("unknown_handler", "", steps));
    let out = sb.tasker(&["run", &file]);
    let err = out.bad_input();
    assert!(err.contains("mystery"), "message should name the step:\n{out}");
    assert!(
        err.contains("no_such_handler"),
        "message should name the callable:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn missing_template_file_exits_2_naming_it() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["run", "does-not-exist.yaml", "--context", r#"{"n":1}"#]);
    let err = out.bad_input();
    assert!(
        err.contains("does-not-exist.yaml"),
        "message should name the file:\n{out}"
    );
    sb.assert_no_tasks();
}

#[test]
fn unknown_top_level_key_exits_2_naming_the_key() {
    let sb = Sandbox::new();
    let file = sb.template(
        "extra_key.yaml",
        &template_yaml(
            "extra_key",
            "colour: blue\n",
            "  - name: a\n    handler: {callable: noop}\n",
        ),
    );
    let out = sb.tasker(&["run", &file]);
    let err = out.bad_input();
    assert!(err.contains("colour"), "message should name the unknown key:\n{out}");
    assert!(err.contains("extra_key.yaml"), "message should name the file:\n{out}");
    sb.assert_no_tasks();
}

// ---------------------------------------------------------------- 4. task failures

#[test]
fn permanent_failure_ends_the_task_in_error_after_one_attempt_and_leaves_dependents_pending() {
    let sb = Sandbox::new();
    let steps = "  - name: boom\n    handler: {callable: fail_permanently}\n  - name: after\n    dependencies: [boom]\n    handler: {callable: noop}\n";
    let file = sb.template("permanent.yaml", &template_yaml("permanent", "", steps));
    let out = sb.tasker(&["run", &file]);
    let task = errored(&out);
    let boom = step(&task, "boom");
    assert_eq!(boom["status"], "error", "{out}");
    assert_eq!(boom["attempts"], 1, "{out}");
    assert_eq!(boom["error"]["error_type"], "example_permanent", "{out}");
    assert_eq!(boom["error"]["retryable"], false, "{out}");
    let after = step(&task, "after");
    assert_eq!(
        after["status"], "pending",
        "a step after a failed step must not run:\n{out}"
    );
    assert_eq!(after["attempts"], 0, "{out}");
    assert!(after["result"].is_null(), "{out}");
}

#[test]
fn retryable_failure_exhausts_its_attempts_and_ends_in_error() {
    let sb = Sandbox::new();
    let steps =
        "  - name: flaky\n    handler: {callable: fail_retryable}\n    retry: {max_attempts: 2, backoff: none}\n";
    let file = sb.template("retryable.yaml", &template_yaml("retryable", "", steps));
    let out = sb.tasker(&["run", &file]);
    let task = errored(&out);
    let flaky = step(&task, "flaky");
    assert_eq!(flaky["status"], "error", "{out}");
    assert_eq!(flaky["attempts"], 2, "{out}");
    assert_eq!(flaky["error"]["error_type"], "example_retryable", "{out}");
    assert_eq!(flaky["error"]["attempts_exhausted"], true, "{out}");
}

#[test]
fn a_panicking_handler_fails_its_step_without_crashing_the_process() {
    let sb = Sandbox::new();
    let steps = "  - name: kaboom\n    handler: {callable: panic}\n    retry: {max_attempts: 1}\n";
    let file = sb.template("panic.yaml", &template_yaml("panicky", "", steps));
    let out = sb.tasker(&["run", &file, "--quiet"]);
    // `errored` asserts exit 1 (a crash would be 101 or a signal) and a JSON task on stdout.
    let task = errored(&out);
    let kaboom = step(&task, "kaboom");
    assert_eq!(kaboom["status"], "error", "{out}");
    assert_eq!(kaboom["attempts"], 1, "{out}");
    assert_eq!(kaboom["error"]["error_type"], "panic", "{out}");
    let message = kaboom["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kaboom panicked on purpose"),
        "message should carry the panic text:\n{out}"
    );
}

#[test]
fn a_step_exceeding_its_timeout_fails_as_a_timeout() {
    let sb = Sandbox::new();
    let steps = "  - name: slow\n    handler: {callable: sleep, initialization: {ms: 5000}}\n    timeout_seconds: 1\n    retry: {max_attempts: 1}\n";
    let file = sb.template("timeout.yaml", &template_yaml("timeout", "", steps));
    let out = sb.tasker(&["run", &file, "--quiet"]);
    let task = errored(&out);
    let slow = step(&task, "slow");
    assert_eq!(slow["status"], "error", "{out}");
    assert_eq!(slow["error"]["error_type"], "timeout", "{out}");
}

#[test]
fn run_timeout_secs_gives_up_and_the_report_matches_the_stored_task() {
    let sb = Sandbox::new();
    let steps = "  - name: slow\n    handler: {callable: sleep, initialization: {ms: 2000}}\n";
    let file = sb.template("slow.yaml", &template_yaml("slow", "", steps));
    let out = sb.tasker(&["run", &file, "--timeout-secs", "1", "--quiet"]);
    assert_eq!(out.code, 1, "giving up waiting is a failure:\n{out}");
    assert!(
        out.stderr.contains("did not finish"),
        "stderr should say the task did not finish:\n{out}"
    );
    // The run said the task did not finish, so the database must not hold it as complete.
    let tasks = sb.task_list(&[]);
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_ne!(
        tasks[0]["state"], "complete",
        "the run reported `did not finish` but the task completed anyway:\n{out}\n{tasks:#?}"
    );
}

// ---------------------------------------------------------------- 5. database location

#[test]
fn a_database_in_a_missing_folder_exits_2_naming_the_path() {
    let sb = Sandbox::new();
    let file = example("linear");
    let out = tasker_in(
        sb.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--context",
            r#"{"n":2}"#,
            "--database-url",
            "sqlite:///nonexistent-dir/x.db",
        ],
    );
    let err = out.bad_input();
    assert!(err.contains("/nonexistent-dir"), "message should name the path:\n{out}");
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn a_database_path_that_is_a_directory_exits_2() {
    let sb = Sandbox::new();
    let db_dir = sb.path().join("a-folder");
    std::fs::create_dir(&db_dir).unwrap();
    let url = format!("sqlite://{}", db_dir.display());
    let file = example("linear");
    let out = tasker_in(
        sb.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--context",
            r#"{"n":2}"#,
            "--database-url",
            &url,
        ],
    );
    let err = out.bad_input();
    assert!(err.contains("a-folder"), "message should name the path:\n{out}");
}

// ---------------------------------------------------------------- 6. task show

#[test]
fn task_show_prints_the_task_with_steps_and_transitions() {
    let sb = Sandbox::new();
    let run = completed(&sb.run_example("diamond", r#"{"n":3}"#, &["--quiet"]));
    let uuid = run["task_uuid"].as_str().unwrap();
    let out = sb.tasker(&["task", "show", uuid]);
    assert_eq!(out.code, 0, "{out}");
    let shown = out.json();
    assert_eq!(shown["task_uuid"], uuid);
    assert_eq!(shown["status"], "complete");
    assert_eq!(value(&shown, "end"), 43046721);
    let task_states: Vec<&str> = shown["transitions"]
        .as_array()
        .expect("task transitions")
        .iter()
        .map(|t| t["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        task_states.last(),
        Some(&"complete"),
        "task transitions: {task_states:?}"
    );
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    for s in steps {
        let states: Vec<&str> = s["transitions"]
            .as_array()
            .expect("step transitions")
            .iter()
            .map(|t| t["to_state"].as_str().unwrap())
            .collect();
        let pos = |st: &str| {
            states
                .iter()
                .position(|x| *x == st)
                .unwrap_or_else(|| panic!("{} never reached {st}: {states:?}", s["name"]))
        };
        assert!(
            pos("in_progress") < pos("enqueued_for_orchestration"),
            "{}: {states:?}",
            s["name"]
        );
        assert!(
            pos("enqueued_for_orchestration") < pos("complete"),
            "{}: {states:?}",
            s["name"]
        );
        assert_eq!(states.last(), Some(&"complete"), "{}: {states:?}", s["name"]);
    }
}

#[test]
fn task_show_of_an_unknown_uuid_exits_2() {
    let sb = Sandbox::new();
    completed(&sb.run_example("linear", r#"{"n":2}"#, &["--quiet"]));
    let unknown = "01a2192f-0000-7000-8000-000000000000";
    let out = sb.tasker(&["task", "show", unknown]);
    let err = out.bad_input();
    assert!(err.contains(unknown), "message should name the uuid:\n{out}");
}

#[test]
fn task_show_of_a_malformed_uuid_exits_2() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["task", "show", "not-a-uuid"]);
    let err = out.bad_input();
    assert!(err.contains("not-a-uuid"), "message should name the argument:\n{out}");
}

// ---------------------------------------------------------------- 7. task list

#[test]
fn task_list_shows_every_run_and_filters_and_limits() {
    let sb = Sandbox::new();
    let first = completed(&sb.run_example("linear", r#"{"n":2}"#, &["--quiet"]));
    let failing = sb.template(
        "fails.yaml",
        &template_yaml(
            "fails",
            "",
            "  - name: boom\n    handler: {callable: fail_permanently}\n",
        ),
    );
    let second = errored(&sb.tasker(&["run", &failing, "--quiet"]));
    let (u1, u2) = (
        first["task_uuid"].as_str().unwrap(),
        second["task_uuid"].as_str().unwrap(),
    );

    let table = sb.tasker(&["task", "list"]);
    assert_eq!(table.code, 0, "{table}");
    assert!(
        table.stdout.contains(u1) && table.stdout.contains(u2),
        "table should list both tasks:\n{table}"
    );

    let all = sb.task_list(&[]);
    let uuids: Vec<&str> = all.iter().map(|t| t["task_uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), 2, "{all:#?}");
    assert!(uuids.contains(&u1) && uuids.contains(&u2), "{all:#?}");

    let complete = sb.task_list(&["--state", "complete"]);
    assert_eq!(complete.len(), 1, "{complete:#?}");
    assert_eq!(complete[0]["task_uuid"], u1);

    let errors = sb.task_list(&["--state", "error"]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["task_uuid"], u2);

    assert_eq!(sb.task_list(&["--limit", "1"]).len(), 1);
    assert_eq!(sb.task_list(&["--namespace", "examples"]).len(), 1);
    assert_eq!(sb.task_list(&["--offset", "1"]).len(), 1);
}

#[test]
fn task_list_with_an_unknown_state_exits_2() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["task", "list", "--state", "sideways"]);
    let err = out.bad_input();
    assert!(err.contains("sideways"), "message should name the state:\n{out}");
}

// ---------------------------------------------------------------- 8. template validate / visualize

#[test]
fn template_validate_accepts_the_seven_examples() {
    let sb = Sandbox::new();
    let out = sb.tasker(&["template", "validate", EXAMPLES]);
    assert_eq!(out.code, 0, "{out}");
    for name in [
        "linear",
        "diamond",
        "tree",
        "mixed_dag",
        "retry",
        "conditional_approval",
        "csv_batch",
    ] {
        assert!(
            out.stdout.contains(&format!("examples/{name}@1.0.0")),
            "{name} not listed:\n{out}"
        );
    }
    assert!(out.stdout.contains("7 template(s) valid"), "{out}");
}

#[test]
fn template_validate_reports_every_problem_of_a_file() {
    let sb = Sandbox::new();
    let steps = "  - name: a\n    dependencies: [ghost]\n    handler: {callable: noop}\n    retry: {max_attempts: 0}\n  - name: a\n    handler: {callable: noop}\n";
    let file = sb.template("many.yaml", &template_yaml("many", "", steps));
    let out = sb.tasker(&["template", "validate", &file]);
    assert_eq!(out.code, 2, "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("ghost"), "unknown dependency not reported:\n{out}");
    assert!(all.contains("duplicate"), "duplicate step name not reported:\n{out}");
    assert!(all.contains("max_attempts"), "max_attempts 0 not reported:\n{out}");
}

#[test]
fn template_validate_check_handlers_flags_an_unknown_callable() {
    let sb = Sandbox::new();
    let file = sb.template(
        "handlers.yaml",
        &template_yaml(
            "handlers",
            "",
            "  - name: odd\n    handler: {callable: no_such_handler}\n",
        ),
    );
    let plain = sb.tasker(&["template", "validate", &file]);
    assert_eq!(
        plain.code, 0,
        "without --check-handlers the callable is not checked:\n{plain}"
    );
    let out = sb.tasker(&["template", "validate", &file, "--check-handlers"]);
    let err = out.bad_input();
    assert!(
        err.contains("no_such_handler"),
        "message should name the callable:\n{out}"
    );
    assert!(err.contains("odd"), "message should name the step:\n{out}");
}

#[test]
fn template_visualize_prints_a_mermaid_graph_of_the_diamond() {
    let sb = Sandbox::new();
    let file = example("diamond");
    let out = sb.tasker(&["template", "visualize", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("graph TD"), "{out}");
    for name in ["start", "left", "right", "end"] {
        assert!(out.stdout.contains(name), "{name} missing:\n{out}");
    }
    assert_eq!(
        out.stdout.matches("-->").count(),
        4,
        "the diamond has four edges:\n{out}"
    );
}

// ---------------------------------------------------------------- 9. task identity

const NOOP_STEP: &str = "  - name: only\n    handler: {callable: noop}\n";

#[test]
fn strict_identity_reuses_the_task_for_the_same_context() {
    let sb = Sandbox::new();
    let file = sb.template("strict.yaml", &template_yaml("strict", "", NOOP_STEP));
    let first = sb.tasker(&["run", &file, "--context", r#"{"k":1}"#]);
    let t1 = completed(&first);
    assert!(!first.stderr.contains("already existed"), "{first}");
    let second = sb.tasker(&["run", &file, "--context", r#"{"k":1}"#]);
    let t2 = completed(&second);
    assert_eq!(
        t1["task_uuid"], t2["task_uuid"],
        "the second run should report the existing task"
    );
    assert!(
        second.stderr.contains("already existed"),
        "stderr should say the task already existed:\n{second}"
    );
    assert_eq!(sb.task_list(&[]).len(), 1);

    // A different context is a different task.
    completed(&sb.tasker(&["run", &file, "--context", r#"{"k":2}"#, "-q"]));
    assert_eq!(sb.task_list(&[]).len(), 2);
}

#[test]
fn always_unique_identity_creates_a_task_per_run() {
    let sb = Sandbox::new();
    let file = sb.template(
        "unique.yaml",
        &template_yaml("unique", "identity_strategy: always_unique\n", NOOP_STEP),
    );
    let t1 = completed(&sb.tasker(&["run", &file, "--context", r#"{"k":1}"#, "-q"]));
    let t2 = completed(&sb.tasker(&["run", &file, "--context", r#"{"k":1}"#, "-q"]));
    assert_ne!(t1["task_uuid"], t2["task_uuid"]);
    assert_eq!(sb.task_list(&[]).len(), 2);
}

// ---------------------------------------------------------------- 10. misc

#[test]
fn migrate_creates_the_database_file() {
    let sb = Sandbox::new();
    let db = sb.path().join("migrated.db");
    let url = format!("sqlite://{}", db.display());
    assert!(!db.exists());
    let out = tasker_in(sb.path(), &["migrate", "--database-url", &url]);
    assert_eq!(out.code, 0, "{out}");
    assert!(db.is_file(), "migrate should create {}", db.display());
    // Migrating again is a no-op that still succeeds.
    let again = tasker_in(sb.path(), &["migrate", "--database-url", &url]);
    assert_eq!(again.code, 0, "{again}");
}

#[test]
fn help_exits_0_and_lists_the_subcommands() {
    let sb = Sandbox::new();
    let out = tasker_in(sb.path(), &["--help"]);
    assert_eq!(out.code, 0, "{out}");
    for cmd in ["run", "template", "task", "migrate"] {
        assert!(out.stdout.contains(cmd), "{cmd} missing from help:\n{out}");
    }
}

#[test]
fn an_unknown_subcommand_exits_2() {
    let sb = Sandbox::new();
    let out = tasker_in(sb.path(), &["frobnicate"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("frobnicate"), "{out}");
}

#[test]
fn commands_without_database_url_use_tasker_db_in_the_current_folder() {
    let sb = Sandbox::new();
    let file = example("linear");
    let out = tasker_in(
        sb.path(),
        &["run", file.to_str().unwrap(), "--context", r#"{"n":2}"#, "-q"],
    );
    completed(&out);
    assert!(
        sb.path().join("tasker.db").is_file(),
        "expected tasker.db in the current folder"
    );
}

// ---------------------------------------------------------------- dead-letter queue

/// A task that failed permanently, recorded in the DLQ by `tasker dlq sweep`; then
/// listed, shown, resolved by completing the failed step (the task resumes), and
/// refused a second resolution.
#[test]
fn dlq_sweep_list_show_and_resolve_a_failed_task() {
    let sb = Sandbox::new();
    let steps = "  - name: boom\n    handler: {callable: fail_permanently}\n    publishes_events:\n\
                 \x20     - { name: boom.done, condition: success }\n\
                 \x20     - { name: boom.failed, condition: failure }\n\
                 \x20 - name: after\n    dependencies: [boom]\n    handler: {callable: noop}\n";
    let file = sb.template("permanent.yaml", &template_yaml("permanent", "", steps));
    let task = errored(&sb.tasker(&["run", &file]));
    let task_uuid = task["task_uuid"].as_str().unwrap().to_string();
    let config = sb.path().join("stale.toml");
    std::fs::write(&config, "[staleness]\nerror_ms = 1\n").unwrap();
    let config = config.to_str().unwrap();

    let empty = sb.tasker(&["dlq", "list", "--json"]);
    assert_eq!((empty.code, empty.json()), (0, serde_json::json!([])), "{empty}");
    let swept = sb.tasker(&["dlq", "sweep", "--json", "--config", config]);
    assert_eq!(swept.code, 0, "{swept}");
    let recorded = swept.json();
    assert_eq!(recorded.as_array().map(Vec::len), Some(1), "{swept}");
    let entry = &recorded[0];
    assert_eq!(entry["reason"], "error_unresolved", "{swept}");
    assert_eq!(entry["task_uuid"], task_uuid.as_str(), "{swept}");
    let id = entry["entry_id"].as_str().unwrap().to_string();
    let again = sb.tasker(&["dlq", "sweep", "--json", "--config", config]);
    assert_eq!(
        again.json(),
        serde_json::json!([]),
        "an open entry is not recorded twice:\n{again}"
    );

    let by_reason = sb.tasker(&[
        "dlq",
        "list",
        "--reason",
        "error_unresolved",
        "--namespace",
        "t",
        "--json",
    ]);
    assert_eq!(by_reason.json().as_array().map(Vec::len), Some(1), "{by_reason}");
    let other = sb.tasker(&["dlq", "list", "--reason", "step_lease_lost", "--json"]);
    assert_eq!(other.json(), serde_json::json!([]), "{other}");
    let listed = sb.tasker(&["dlq", "list"]);
    assert_eq!(listed.code, 0, "{listed}");
    assert!(listed.stdout.lines().next().unwrap().starts_with("ENTRY"), "{listed}");
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains("error_unresolved"),
        "{listed}"
    );
    let shown = sb.tasker(&["dlq", "show", &id]);
    assert_eq!(shown.code, 0, "{shown}");
    assert!(shown.stdout.contains("reason:      error_unresolved"), "{shown}");
    assert!(
        shown.stdout.contains("boom") && shown.stdout.contains("after"),
        "{shown}"
    );
    let shown = sb.tasker(&["dlq", "show", &id, "--json"]);
    assert_eq!(shown.json()["snapshot"]["task"]["state"], "error", "{shown}");

    let resolved = sb.tasker(&[
        "dlq",
        "resolve",
        &id,
        "--complete-step",
        "boom",
        "--result",
        r#"{"value": 2}"#,
        "--note",
        "fixed by hand",
        "--by",
        "ops",
        "--json",
    ]);
    assert_eq!(resolved.code, 0, "{resolved}");
    let entry = resolved.json();
    assert_eq!(
        (
            &entry["status"],
            &entry["resolution"],
            &entry["resolved_by"],
            &entry["resolution_note"]
        ),
        (
            &"resolved".into(),
            &"complete_step".into(),
            &"ops".into(),
            &"fixed by hand".into()
        ),
        "{resolved}"
    );
    let shown = sb.tasker(&["task", "show", &task_uuid]);
    let task = shown.json();
    assert_eq!(task["status"], "steps_in_process", "the task resumed:\n{shown}");
    assert_eq!(step(&task, "boom")["status"], "complete", "{shown}");
    assert_eq!(
        step(&task, "boom")["result"],
        serde_json::json!({"value": 2}),
        "{shown}"
    );
    assert_eq!(
        step(&task, "after")["status"],
        "enqueued",
        "its successor is ready:\n{shown}"
    );
    assert!(sb
        .tasker(&["dlq", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        sb.tasker(&["dlq", "list", "--status", "resolved", "--json"]).json()[0]["entry_id"],
        id.as_str()
    );

    let twice = sb.tasker(&["dlq", "resolve", &id, "--resolve-step", "boom"]);
    assert_eq!(twice.code, 1, "{twice}");
    assert!(twice.stderr.contains("already resolved"), "{twice}");

    // The failed attempt fired the failure event; the operator's completion fires the
    // success event with the supplied result, from a process without the template.
    let tail = sb.tasker(&["events", "tail", "--json"]);
    let events: Vec<serde_json::Value> = tail.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["boom.failed", "boom.done"], "{tail}");
    assert_eq!(events[1]["payload"], serde_json::json!({"value": 2}), "{tail}");
}

#[test]
fn dlq_commands_refuse_bad_input() {
    let sb = Sandbox::new();
    let unknown = uuid_like();
    assert!(sb
        .tasker(&["dlq", "show", &unknown])
        .bad_input()
        .contains("no DLQ entry"));
    assert!(sb
        .tasker(&["dlq", "show", "nope"])
        .bad_input()
        .contains("not a DLQ entry id"));
    assert!(sb
        .tasker(&["dlq", "list", "--status", "bogus"])
        .bad_input()
        .contains("unknown DLQ status"));
    assert!(sb
        .tasker(&["dlq", "resolve", &unknown, "--resolve-step", "x"])
        .bad_input()
        .contains("no DLQ entry"));
    let no_action = sb.tasker(&["dlq", "resolve", &unknown]);
    assert_eq!(no_action.code, 2, "{no_action}");
    let no_result = sb.tasker(&["dlq", "resolve", &unknown, "--complete-step", "x"]);
    assert_eq!(no_result.code, 2, "{no_result}");
    let bad_json = sb.tasker(&["dlq", "resolve", &unknown, "--complete-step", "x", "--result", "{"]);
    assert!(bad_json.bad_input().contains("--result is not valid JSON"));
}

/// A UUID no entry has.
fn uuid_like() -> String {
    "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_string()
}

// ---------------------------------------------------------------- 11. domain events

#[test]
fn events_tail_prints_durable_events_and_acknowledges_for_a_consumer() {
    let sb = Sandbox::new();
    let steps = "  - name: only\n    handler: { callable: square }\n    publishes_events:\n\
                 \x20     - { name: number.squared }\n\
                 \x20     - { name: number.logged, delivery_mode: broadcast }\n\
                 \x20     - { name: number.fast, delivery_mode: fast }\n";
    let file = sb.template("events.yaml", &template_yaml("events", "", steps));
    completed(&sb.tasker(&["run", &file, "--context", r#"{"n":4}"#]));
    let tail = |args: &[&str]| {
        let mut all = vec!["events", "tail"];
        all.extend_from_slice(args);
        let out = sb.tasker(&all);
        assert_eq!(out.code, 0, "{out}");
        out.stdout.lines().map(String::from).collect::<Vec<_>>()
    };
    let first = tail(&["--consumer", "c1", "--json"]);
    let events: Vec<Value> = first.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["number.squared", "number.logged"], "fast events are not stored");
    assert_eq!(events[0]["payload"], serde_json::json!({"value": 16}));
    assert!(events[0]["sequence"].as_i64().unwrap() < events[1]["sequence"].as_i64().unwrap());
    assert!(
        tail(&["--consumer", "c1", "--json"]).is_empty(),
        "acknowledged by the first tail"
    );
    assert_eq!(
        tail(&["--consumer", "c2", "--json"]).len(),
        2,
        "another consumer starts over"
    );
    let text = tail(&["--name", "number.sq*"]);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("number.squared") && text[0].contains(r#"{"value":16}"#),
        "{text:?}"
    );
    assert_eq!(tail(&[]).len(), 2, "without a consumer every stored event is printed");
}

#[test]
fn events_prune_deletes_what_every_consumer_has_acknowledged() {
    let sb = Sandbox::new();
    let steps = "  - name: only\n    handler: { callable: square }\n    publishes_events:\n\
                 \x20     - { name: number.squared }\n";
    let file = sb.template("events.yaml", &template_yaml("events", "", steps));
    completed(&sb.tasker(&["run", &file, "--context", r#"{"n":4}"#]));
    completed(&sb.tasker(&["run", &file, "--context", r#"{"n":5}"#]));
    let run = |args: &[&str]| {
        let mut all = vec!["events"];
        all.extend_from_slice(args);
        let out = sb.tasker(&all);
        assert_eq!(out.code, 0, "{out}");
        out.stdout
    };
    let stored = || run(&["tail", "--json"]).lines().count();
    assert!(
        run(&["prune", "--older-than", "0s"]).contains("pruned 0 domain event(s)"),
        "no consumer has acknowledged anything yet"
    );
    assert_eq!(stored(), 2);
    run(&["tail", "--consumer", "c1"]);
    assert!(run(&["prune", "--older-than", "1h"]).contains("pruned 0"), "too recent");
    assert!(run(&["prune", "--older-than", "0s"]).contains("pruned 2 domain event(s)"));
    assert_eq!(stored(), 0);
    completed(&sb.tasker(&["run", &file, "--context", r#"{"n":6}"#]));
    assert!(run(&["prune", "--older-than", "0s", "--include-unacknowledged"]).contains("pruned 1"));
    let bad = sb.tasker(&["events", "prune", "--older-than", "soon"]);
    assert_ne!(bad.code, 0, "{bad}");
}
