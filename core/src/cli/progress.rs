//! Live progress of one task on stderr: a line per step start and per attempt result.

use crate::events::EngineEvent;
use crate::state::StepState;
use std::io::Write;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Prints the task's events until the receiver closes or the task reaches `done`.
pub async fn follow(mut events: broadcast::Receiver<EngineEvent>, task_uuid: Uuid, quiet: bool) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if !quiet {
                    eprintln!("  … {n} progress events skipped");
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if quiet {
            continue;
        }
        let line = match event {
            EngineEvent::StepStarted {
                task_uuid: t,
                name,
                attempt,
                handler,
                ..
            } if t == task_uuid => {
                format!("  ▸ {name} started (attempt {attempt}, handler {handler})")
            }
            EngineEvent::StepFinished {
                task_uuid: t,
                name,
                attempt,
                state,
                execution_ms,
                error,
                ..
            } if t == task_uuid => match state {
                StepState::Complete => format!("  ✓ {name} complete ({execution_ms} ms)"),
                StepState::WaitingForRetry => {
                    format!(
                        "  ↻ {name} attempt {attempt} failed, will retry: {}",
                        error.unwrap_or_default()
                    )
                }
                other => format!(
                    "  ✗ {name} {other} after attempt {attempt}: {}",
                    error.unwrap_or_default()
                ),
            },
            EngineEvent::TaskChanged { task_uuid: t, to, .. }
                if t == task_uuid && (to.is_terminal() || to == crate::state::TaskState::BlockedByFailures) =>
            {
                format!("task {task_uuid} {to}")
            }
            _ => continue,
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}
