//! Logs and traces of the `tasker` binary: JSON log lines carry the task's
//! correlation id, and spans reach an OTLP/HTTP collector when one is configured
//! (a fake collector here, on a free local port).

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use std::process::Command;
use std::sync::{Arc, Mutex};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `tasker ARGS` with a clean environment (no TASKER_*, RUST_* or OTEL_* variables) plus `env`.
fn tasker(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasker"));
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("TASKER_") || key.starts_with("RUST_") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the tasker binary runs")
}

/// `tasker run examples/NAME.yaml --context CONTEXT --quiet` on a fresh SQLite file; the
/// task it prints, and the output. Fails unless the run succeeded.
fn run_example(name: &str, context: &str, env: &[(&str, &str)]) -> (serde_json::Value, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let example = format!("{REPO}/examples/{name}.yaml");
    let args = ["run", &example, "--context", context, "--database-url", &url, "--quiet"];
    let out = tasker(&args, env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), out)
}

#[test]
fn json_log_lines_of_a_run_carry_the_tasks_correlation_id() {
    let (task, out) = run_example(
        "retry",
        r#"{"n": 4}"#,
        &[("TASKER_LOG", "info"), ("TASKER_LOG_FORMAT", "json")],
    );
    let correlation = task["correlation_id"].as_str().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let failed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("attempt failed"))
        })
        .collect();
    assert_eq!(failed.len(), 2, "two failed attempts are logged:\n{stderr}");
    for line in failed {
        assert_eq!(line["fields"]["correlation_id"], correlation, "{line}");
        assert_eq!(line["level"], "INFO");
    }
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "task finished")
        .unwrap_or_else(|| panic!("no `task finished` line:\n{stderr}"));
    assert_eq!(finished["fields"]["correlation_id"], correlation);
    assert_eq!(finished["fields"]["state"], "complete");
}

#[test]
fn spans_are_exported_to_an_otlp_collector_when_one_is_configured() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sink = received.clone();
    let addr = runtime.block_on(async move {
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(body);
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let endpoint = format!("http://{addr}");
    let (task, _) = run_example(
        "linear",
        r#"{"n": 2}"#,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "tasker-test"),
        ],
    );
    let correlation = task["correlation_id"].as_str().unwrap().to_string();
    // The exporter flushed before the process exited.
    let bodies = received.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "the collector received nothing");
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.iter().copied()).collect();
    let text = String::from_utf8_lossy(&all);
    for needle in [
        "step.execute",
        "step.complete",
        "tasker-test",
        correlation.as_str(),
        "square",
    ] {
        assert!(text.contains(needle), "the exported spans lack `{needle}`");
    }
    drop(runtime);
}
