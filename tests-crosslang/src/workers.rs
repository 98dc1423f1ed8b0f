//! Worker processes: one per language and group, each running that language's
//! handlers (`handlers/<language>/`) on its installed package. Every worker takes
//! the same arguments:
//!
//! ```text
//! --database-url URL --namespace NS... --template FILE... --concurrency N
//! --poll-interval-ms MS [--builtin-handlers] [--break CALLABLE]...
//! ```
//!
//! prints one line `READY {"language": ..., "worker_id": ..., "runtime": ...}` on
//! stdout once it polls for steps, and on SIGTERM drains and exits 0. `worker_id`
//! is the id its engine records in audit rows. (Domain events are read from the
//! store by the runner, not reported by workers.) `--break CALLABLE` swaps a handler for the
//! deliberately wrong variant kept next to it (used by the runner's self-test).
//! Everything else the worker writes goes to a log file, shown when it fails.

use crate::{Language, SuiteError};
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a worker may take to print `READY`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker may take to drain and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where each language's interpreter and installed package are.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The repository root (`tests-crosslang/handlers/<language>/` lives under it).
    pub repo: PathBuf,
    /// A Python with the `tasker-core` wheel installed (a virtualenv's `bin/python`).
    pub python: Option<PathBuf>,
    /// A Ruby whose `GEM_HOME`/`GEM_PATH` (inherited) hold the `tasker-core` gem.
    pub ruby: Option<PathBuf>,
    /// A folder with `node_modules/tasker-core` installed and the compiled worker
    /// (`out/worker.js`, from `handlers/typescript/`).
    pub node_app: Option<PathBuf>,
    /// The `crosslang-rust-worker` binary.
    pub rust_worker: PathBuf,
}

impl Toolchain {
    /// The program and first arguments that start `language`'s worker.
    fn command(&self, language: Language) -> Result<(PathBuf, Vec<OsString>), SuiteError> {
        let handlers = self.repo.join("tests-crosslang/handlers");
        let missing = |what: &str| SuiteError::Worker {
            language,
            message: format!("{what} was not given (scripts/conformance passes it)"),
        };
        Ok(match language {
            Language::Rust => (self.rust_worker.clone(), vec![]),
            Language::Python => (
                self.python.clone().ok_or_else(|| missing("--python"))?,
                vec![handlers.join("python/worker.py").into()],
            ),
            Language::Ruby => (
                self.ruby.clone().ok_or_else(|| missing("--ruby"))?,
                vec![handlers.join("ruby/worker.rb").into()],
            ),
            Language::Typescript => {
                let app = self.node_app.clone().ok_or_else(|| missing("--node-app"))?;
                (PathBuf::from("node"), vec![app.join("out/worker.js").into()])
            }
        })
    }
}

/// What one worker process serves.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Its handlers' language.
    pub language: Language,
    /// The database.
    pub database_url: String,
    /// Namespaces it claims from.
    pub namespaces: Vec<String>,
    /// Template files it loads (its engine reads declared domain events from them).
    pub templates: Vec<PathBuf>,
    /// Also run the core's built-in Rust handlers (an embedded host).
    pub builtin_handlers: bool,
    /// Callables to swap for their deliberately broken variants.
    pub broken: Vec<String>,
}

/// The worker's `READY` line.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    /// The language it says it runs.
    pub language: String,
    /// The id its engine records in audit rows.
    pub worker_id: String,
    /// Interpreter and version, for the report.
    pub runtime: String,
}

/// A started worker.
pub struct RunningWorker {
    /// What it was started with.
    pub spec: WorkerSpec,
    /// What it said when ready.
    pub ready: Ready,
    /// Its log file (stderr, and stdout after `READY`).
    pub log: PathBuf,
    child: Child,
    stdout: tokio::task::JoinHandle<()>,
}

/// Starts a worker and waits for its `READY` line.
pub async fn start(spec: WorkerSpec, tools: Toolchain, log: PathBuf) -> Result<RunningWorker, SuiteError> {
    let language = spec.language;
    let fail = |message: String| SuiteError::Worker { language, message };
    let (program, mut args) = tools.command(language)?;
    args.extend(["--database-url".into(), spec.database_url.clone().into()]);
    for ns in &spec.namespaces {
        args.extend(["--namespace".into(), ns.into()]);
    }
    for t in &spec.templates {
        args.extend(["--template".into(), t.clone().into_os_string()]);
    }
    args.extend([
        "--concurrency".into(),
        "16".into(),
        "--poll-interval-ms".into(),
        "50".into(),
    ]);
    if spec.builtin_handlers {
        args.push("--builtin-handlers".into());
    }
    for b in &spec.broken {
        args.extend(["--break".into(), b.into()]);
    }
    let log_file = std::fs::File::create(&log).map_err(|e| fail(format!("cannot create {}: {e}", log.display())))?;
    let mut child = Command::new(&program)
        .args(&args)
        .current_dir(&tools.repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", program.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(json) = line.strip_prefix("READY ") {
                return serde_json::from_str::<Ready>(json).map_err(|e| format!("bad READY line `{line}`: {e}"));
            }
            append(log.clone(), line).await;
        }
        Err("exited before it was ready".to_string())
    })
    .await
    .map_err(|_| format!("not ready after {} s", READY_TIMEOUT.as_secs()))
    .and_then(|r| r);
    let ready = match ready {
        Ok(r) => r,
        Err(message) => {
            let _ = child.kill().await;
            return Err(fail(format!("{message}\n{}", log_tail(&log, 30))));
        }
    };
    if ready.language != language.name() {
        return Err(fail(format!("says it runs {}, not {language}", ready.language)));
    }
    let log_path = log.clone();
    let stdout = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            append(log_path.clone(), line).await;
        }
    });
    Ok(RunningWorker {
        spec,
        ready,
        log,
        child,
        stdout,
    })
}

async fn append(log: PathBuf, line: String) {
    if let Ok(mut f) = tokio::fs::OpenOptions::new().append(true).open(&log).await {
        let _ = f.write_all(format!("{line}\n").as_bytes()).await;
    }
}

impl RunningWorker {
    /// Sends SIGTERM and waits for the drain; an exit other than 0 is an error
    /// carrying the end of the log.
    pub async fn stop(mut self) -> Result<(), SuiteError> {
        let language = self.spec.language;
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(SuiteError::Worker {
                    language,
                    message: format!("wait: {e}"),
                })
            }
            Err(_) => {
                let _ = self.child.kill().await;
                return Err(SuiteError::Worker {
                    language,
                    message: format!(
                        "did not exit within {} s of SIGTERM\n{}",
                        STOP_TIMEOUT.as_secs(),
                        log_tail(&self.log, 30)
                    ),
                });
            }
        };
        let _ = self.stdout.await;
        if status.success() {
            Ok(())
        } else {
            Err(SuiteError::Worker {
                language,
                message: format!("exited with {status} after SIGTERM\n{}", log_tail(&self.log, 30)),
            })
        }
    }
}

/// The last `n` lines of a log, indented.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    format!(
        "    --- last {} line(s) of {} ---\n{}",
        tail.len(),
        path.display(),
        tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    )
}
