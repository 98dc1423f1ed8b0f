//! What `tasker run` and `tasker task show` print on stdout.

use crate::store::{TaskView, TransitionRecord};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The final task, as printed.
#[derive(Debug, Serialize)]
pub struct TaskOutput {
    pub task_uuid: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub status: String,
    pub context: Value,
    pub correlation_id: Uuid,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    pub steps: Vec<StepOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<TransitionRecord>>,
}

/// One step, as printed.
#[derive(Debug, Serialize)]
pub struct StepOutput {
    pub step_uuid: Uuid,
    pub name: String,
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub handler: String,
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<TransitionRecord>>,
}

impl From<TaskView> for TaskOutput {
    fn from(t: TaskView) -> Self {
        Self {
            task_uuid: t.task_uuid,
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            status: t.state.as_str().to_string(),
            context: t.context,
            correlation_id: t.correlation_id,
            created_at: t.created_at,
            completed_at: t.completed_at,
            steps: t
                .steps
                .into_iter()
                .map(|s| StepOutput {
                    step_uuid: s.step_uuid,
                    name: s.name,
                    status: s.state.as_str().to_string(),
                    attempts: s.attempts,
                    max_attempts: s.max_attempts,
                    handler: s.handler,
                    result: s.result,
                    error: s.error,
                    next_attempt_at: (s.state == crate::state::StepState::WaitingForRetry)
                        .then_some(s.ready_at)
                        .flatten(),
                    transitions: None,
                })
                .collect(),
            transitions: None,
        }
    }
}

/// Pretty JSON for people and tools alike. A closed stdout (e.g. `| head`) is not an error.
pub fn print_json(value: &impl Serialize) {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(s) => {
            let _ = writeln!(std::io::stdout().lock(), "{s}");
        }
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// Writes one line to stdout; a closed stdout is not an error.
pub fn line(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
