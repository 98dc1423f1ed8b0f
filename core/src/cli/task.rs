//! `tasker task show|list|create`: read tasks from the database, or create one
//! (see [`super::task_create`]).

use super::output::{print_json, TaskOutput};
use super::{CliError, EXIT_OK};
use crate::config::EngineConfig;
use crate::state::TaskState;
use crate::store::TaskListParams;
use clap::Subcommand;
use std::str::FromStr;
use uuid::Uuid;

/// `tasker task …`
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task from a template (in the database, or in --templates DIR) and print its UUID.
    Create(super::task_create::CreateArgs),
    /// Show one task with its steps and every state transition (JSON).
    Show {
        /// The task's UUID.
        uuid: String,
    },
    /// List tasks, newest first.
    List {
        /// Only tasks in this state (e.g. complete, error, steps_in_process).
        #[arg(long)]
        state: Option<String>,
        /// Only tasks of this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Most tasks to list.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Tasks to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `tasker task` subcommand.
pub async fn run(config: EngineConfig, cmd: TaskCommand) -> Result<i32, CliError> {
    // Reads and one-off creations need no LISTEN connection.
    let store = super::tasker_store_with(&config.database_url, crate::store::StoreOptions { listen: false }).await?;
    let result = match cmd {
        TaskCommand::Create(args) => super::task_create::create(&store, &config.database_url, args).await,
        TaskCommand::Show { uuid } => show(&store, &uuid).await,
        TaskCommand::List {
            state,
            namespace,
            limit,
            offset,
            json,
        } => {
            let state = state
                .map(|s| TaskState::from_str(&s).map_err(|e| CliError::BadInput(e.to_string())))
                .transpose()?;
            let tasks = store
                .task_list(TaskListParams {
                    state,
                    namespace,
                    limit,
                    offset,
                })
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if json {
                print_json(&tasks);
            } else {
                super::output::line(format!(
                    "{:<36}  {:<24}  {:<28}  {:>5}  CREATED_AT_MS",
                    "TASK", "STATUS", "TEMPLATE", "STEPS"
                ));
                for t in &tasks {
                    let template = format!("{}/{}@{}", t.namespace, t.name, t.version);
                    super::output::line(format!(
                        "{:<36}  {:<24}  {:<28}  {:>5}  {}",
                        t.task_uuid,
                        t.state.as_str(),
                        template,
                        t.step_count,
                        t.created_at
                    ));
                }
            }
            Ok(EXIT_OK)
        }
    };
    store.close().await;
    result
}

async fn show(store: &crate::store::SharedStore, uuid: &str) -> Result<i32, CliError> {
    let uuid = Uuid::parse_str(uuid).map_err(|e| CliError::BadInput(format!("`{uuid}` is not a task UUID: {e}")))?;
    let task = store
        .task_get(uuid)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?
        .ok_or_else(|| CliError::BadInput(format!("no task {uuid}")))?;
    print_json(&show_output(store, task).await?);
    Ok(EXIT_OK)
}

/// A task as `tasker task show` prints it: with its steps and every transition.
pub(super) async fn show_output(
    store: &crate::store::SharedStore,
    task: crate::store::TaskView,
) -> Result<TaskOutput, CliError> {
    let fail = |e: crate::store::StoreError| CliError::Failed(e.to_string());
    let uuid = task.task_uuid;
    let mut out = TaskOutput::from(task);
    out.transitions = Some(store.task_transitions(uuid).await.map_err(fail)?);
    for step in &mut out.steps {
        step.transitions = Some(store.step_transitions(step.step_uuid).await.map_err(fail)?);
    }
    Ok(out)
}
