//! Waiting for SIGTERM or SIGINT: how `tasker orchestrator` and `tasker worker` are
//! told to stop. Install the handlers first (before the slow start-up work), so that
//! a signal sent while the process starts is not lost, then wait.

use super::CliError;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT handlers, installed.
#[derive(Debug)]
pub struct Termination {
    term: Signal,
    int: Signal,
}

impl Termination {
    /// Installs the handlers (from now on neither signal ends the process by itself).
    pub fn install() -> Result<Self, CliError> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| CliError::Failed(format!("cannot install the {name} handler: {e}")))
        };
        Ok(Self {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Waits for the first SIGTERM or SIGINT and says which it was.
    pub async fn wait(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
