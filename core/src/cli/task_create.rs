//! `tasker task create`: validate a context against a template and create the task
//! in the database, without running anything (workers in other processes run it).
//!
//! The template comes from `--templates DIR` when given, else from the database
//! (registered by `tasker orchestrator --templates DIR`, or by earlier tasks).
//! Without `--wait`, stdout gets `{"task_uuid", "created", "status"}`. With `--wait`,
//! that line goes to stderr, the store is polled until the task ends, and stdout
//! gets the final task as `tasker task show` prints it (exit 0 complete, 1 otherwise,
//! 1 on timeout: the task keeps running).

use super::output::print_json;
use super::{CliError, EXIT_FAILED, EXIT_OK};
use crate::clock;
use crate::orchestration::task_request::TemplateRef;
use crate::orchestration::template_lookup::{registered_template, TemplateLookupError};
use crate::orchestration::{CreateTaskError, TaskRequest, TaskSubmission};
use crate::state::TaskState;
use crate::store::SharedStore;
use crate::template::{LoadedTemplate, TemplateRegistry};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// How often `--wait` reads the task.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Arguments of `tasker task create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The template: namespace/name (latest version) or namespace/name@version.
    template: String,
    /// The task context, as JSON.
    #[arg(long, default_value = "{}")]
    context: String,
    /// Makes resubmission safe: the same key returns the same task.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait until the task ends and print it.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 1; the task keeps running).
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Resolve the template in this folder instead of the database.
    #[arg(long)]
    templates: Option<PathBuf>,
}

/// Runs `tasker task create` over an open store.
pub async fn create(store: &SharedStore, database_url: &str, args: CreateArgs) -> Result<i32, CliError> {
    let context: serde_json::Value = serde_json::from_str(&args.context)
        .map_err(|e| CliError::BadInput(format!("--context is not valid JSON: {e}")))?;
    let template = match &args.templates {
        Some(dir) => {
            let registry = TemplateRegistry::load_dir(dir, None).map_err(|e| CliError::BadInput(e.to_string()))?;
            registry
                .resolve(&args.template)
                .map_err(|e| CliError::BadInput(e.to_string()))?
        }
        None => from_database(store, database_url, &args.template).await?,
    };
    let processor = format!("cli-{}", Uuid::now_v7());
    let request = TaskRequest::new(
        store.clone(),
        clock::system(),
        Arc::new(RwLock::new(TemplateRegistry::new())),
        processor,
    );
    let mut submission = TaskSubmission::new(TemplateRef::Loaded(template), context);
    submission.idempotency_key = args.idempotency_key.clone();
    let created = request
        .create_many(&[submission])
        .await
        .pop()
        .expect("one answer per submission");
    let created = created.map_err(|e| match e {
        CreateTaskError::Store(_)
        | CreateTaskError::StoreFailed { .. }
        | CreateTaskError::Closed
        | CreateTaskError::Overloaded { .. } => CliError::Failed(e.to_string()),
        other => CliError::BadInput(other.to_string()),
    })?;
    let answer = json!({"task_uuid": created.task_uuid, "created": created.created, "status": created.state.as_str()});
    if !args.wait {
        print_json(&answer);
        return Ok(EXIT_OK);
    }
    eprintln!("{answer}");
    wait(store, created.task_uuid, Duration::from_secs(args.timeout_secs)).await
}

/// Polls until the task ends (or is held in blocked_by_failures), then prints it.
async fn wait(store: &SharedStore, task_uuid: Uuid, timeout: Duration) -> Result<i32, CliError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let task = store
            .task_get(task_uuid)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .ok_or_else(|| CliError::Failed(format!("task {task_uuid} disappeared")))?;
        if task.state.is_terminal() || task.state == TaskState::BlockedByFailures {
            let state = task.state;
            print_json(&super::task::show_output(store, task).await?);
            return Ok(if state == TaskState::Complete {
                EXIT_OK
            } else {
                EXIT_FAILED
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "task {task_uuid} did not finish within {} s (last state: {}); it keeps its state and may still finish",
                timeout.as_secs(),
                task.state
            )));
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

/// The template a key names, as registered in the database.
async fn from_database(store: &SharedStore, database_url: &str, key: &str) -> Result<Arc<LoadedTemplate>, CliError> {
    match registered_template(store, key).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(CliError::BadInput(format!(
            "unknown template `{key}`: it is not registered in the database at {database_url}; \
             start `tasker orchestrator --templates DIR` to register a folder of templates, \
             or pass --templates DIR"
        ))),
        Err(e @ TemplateLookupError::BadKey(_)) => Err(CliError::BadInput(e.to_string())),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}
