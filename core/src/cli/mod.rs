//! The `tasker` command line: argument parsing, exit codes and logging set-up.
//! Each subcommand lives in its own file; this one only routes.
//!
//! Exit codes: 0 success; 1 the task ended in error (or a runtime failure);
//! 2 bad input (arguments, templates, context, database location), with one
//! clear message on stderr.

mod dlq;
mod events;
mod orchestrator;
mod output;
mod progress;
mod run;
mod signal;
mod task;
mod task_create;
mod template;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a task that ended in error, or a failure at run time.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;

/// Why a command failed, and which exit code that means.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user gave something we cannot use.
    #[error("{0}")]
    BadInput(String),
    /// Something failed while running.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::BadInput(_) => EXIT_BAD_INPUT,
            Self::Failed(_) => EXIT_FAILED,
        }
    }
}

/// Tasker: run DAG workflows defined as YAML task templates.
#[derive(Debug, Parser)]
#[command(name = "tasker", version, about, long_about = None)]
struct Cli {
    /// Database URL: sqlite://PATH (or a plain path) or postgres://…. Defaults to sqlite://tasker.db in the current folder.
    #[arg(long, global = true, env = "TASKER_DATABASE_URL")]
    database_url: Option<String>,
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true, env = "TASKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a task and run it to the end in this process (orchestration + a Rust worker).
    Run(run::RunArgs),
    /// Validate and draw task templates.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Create and inspect tasks.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Register a folder of templates and run orchestration (lease sweeps, retry wake-ups) until SIGTERM/SIGINT.
    Orchestrator(orchestrator::OrchestratorArgs),
    /// Run steps of the given namespaces with the built-in Rust handlers until SIGTERM/SIGINT, then drain.
    Worker(worker::WorkerArgs),
    /// Dead-letter queue: list, show and resolve stuck tasks the staleness sweep recorded.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Read durable domain events (`tail`).
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Create or upgrade the database schema and exit.
    Migrate,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    // Services log JSON lines by default; commands people run log text.
    let format = match cli.command {
        Command::Orchestrator(_) | Command::Worker(_) => crate::telemetry::LogFormat::Json,
        _ => crate::telemetry::LogFormat::Text,
    };
    let _telemetry = crate::telemetry::init(&config.telemetry, crate::telemetry::log_format(format));
    // Handler panics are caught and recorded as failures; log them as one line
    // instead of the default multi-line report on stderr.
    std::panic::set_hook(Box::new(|info| tracing::warn!("panic: {info}")));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    let result = runtime.block_on(dispatch(cli, config));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn dispatch(cli: Cli, config: crate::config::EngineConfig) -> Result<i32, CliError> {
    match cli.command {
        Command::Run(args) => run::run(config, args).await,
        Command::Template(cmd) => template::run(cmd),
        Command::Task(cmd) => task::run(config, cmd).await,
        Command::Orchestrator(args) => orchestrator::run(config, args).await,
        Command::Worker(args) => worker::run(config, args).await,
        Command::Dlq(cmd) => dlq::run(config, cmd).await,
        Command::Events(cmd) => events::run(config, cmd).await,
        Command::Migrate => {
            let store = tasker_store(&config.database_url).await?;
            store.close().await;
            eprintln!("database at {} is up to date", config.database_url);
            Ok(EXIT_OK)
        }
    }
}

fn load_config(cli: &Cli) -> Result<crate::config::EngineConfig, CliError> {
    let mut config =
        crate::config::EngineConfig::load(cli.config.as_deref()).map_err(|e| CliError::BadInput(e.to_string()))?;
    if let Some(url) = &cli.database_url {
        config.database_url = url.clone();
    }
    Ok(config)
}

/// Opens the store, turning failures into bad-input errors (a path problem is the user's to fix).
async fn tasker_store(url: &str) -> Result<crate::store::SharedStore, CliError> {
    crate::store::open(url)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))
}

/// Like [`tasker_store`], with explicit options (the long-running commands' wake-up mode).
async fn tasker_store_with(
    url: &str,
    options: crate::store::StoreOptions,
) -> Result<crate::store::SharedStore, CliError> {
    crate::store::open_with(url, options)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))
}
