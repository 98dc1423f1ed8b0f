//! Running the real `tasker` binary from integration tests: a command with a clean
//! environment, and a guard for long-running children (orchestrators, workers) that
//! captures their stderr, stops them with SIGTERM or SIGKILL, and kills any child
//! still running when the guard drops (a failed test leaves nothing behind).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `tasker ARGS --database-url URL` without any inherited `TASKER_*`/`RUST_*`
/// variable, plus `env`. An orchestrator's HTTP API listens on a free port
/// (`TASKER_API_BIND=127.0.0.1:0`), so that tests running at once never collide.
pub fn tasker_command(args: &[&str], database_url: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasker"));
    cmd.args(args).arg("--database-url").arg(database_url);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("TASKER_") || key.starts_with("RUST_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("TASKER_API_BIND", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `tasker` child; killed (and reaped) on drop if still alive.
pub struct TaskerProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// A name for messages.
    pub name: String,
    patience: Duration,
}

impl TaskerProcess {
    /// Starts `cmd` (stdout discarded, stderr captured) and waits until its stderr
    /// contains `ready`; panics if it exits first or takes longer than `patience`.
    pub fn spawn(name: &str, mut cmd: Command, ready: &str, patience: Duration) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tasker");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut proc = Self {
            child,
            stderr,
            name: name.to_string(),
            patience,
        };
        proc.wait_for_stderr(ready);
        proc
    }

    /// Everything the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the child runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until stderr contains `needle`; panics if the child exits first.
    pub fn wait_for_stderr(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`{}` exited ({status}) before printing `{needle}`; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < self.patience,
                "`{}` never printed `{needle}`; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap the child.
    pub fn kill9(&mut self) -> ExitStatus {
        assert!(
            self.is_alive(),
            "`{}` died before it was killed; stderr:\n{}",
            self.name,
            self.stderr()
        );
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap")
    }

    /// SIGTERM; returns the exit code and the whole stderr once the child exits.
    /// Panics if it is not running, dies by a signal, or outlasts the patience.
    pub fn terminate(&mut self) -> (i32, String) {
        assert!(
            self.is_alive(),
            "`{}` is not running any more; stderr:\n{}",
            self.name,
            self.stderr()
        );
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                std::thread::sleep(Duration::from_millis(50)); // the reader thread catches up
                let code = status
                    .code()
                    .unwrap_or_else(|| panic!("`{}` died by a signal: {status:?}\n{}", self.name, self.stderr()));
                return (code, self.stderr());
            }
            assert!(
                start.elapsed() < self.patience,
                "`{}` did not exit after SIGTERM; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TaskerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
