//! `tasker orchestrator`: registers a folder of templates in the database and runs
//! the orchestration side of an engine (no worker namespaces): the StepEnqueuer's
//! lease sweeps and retry wake-ups, and the HTTP API (task creation, reads, cancel,
//! health, readiness, metrics) on `api.bind` unless `--no-api`.
//! Runs until SIGTERM or SIGINT, then stops cleanly (exit 0).

use super::signal::Termination;
use super::{CliError, EXIT_OK};
use crate::clock;
use crate::config::{EngineConfig, WakeupMode};
use crate::engine::Engine;
use crate::orchestration::template_lookup::template_records;
use crate::template::TemplateRegistry;
use crate::worker::HandlerRegistry;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `tasker orchestrator`.
#[derive(Debug, Args)]
pub struct OrchestratorArgs {
    /// Folder of task templates (YAML, searched recursively) to validate and register.
    #[arg(long)]
    templates: PathBuf,
    /// How workers learn of new work: hybrid (default), event or polling.
    #[arg(long)]
    wakeup_mode: Option<WakeupMode>,
    /// Address of the HTTP API (`HOST:PORT`; port 0 picks a free one). Default: `api.bind`, 127.0.0.1:8080.
    #[arg(long)]
    api_bind: Option<String>,
    /// Do not serve the HTTP API.
    #[arg(long)]
    no_api: bool,
}

/// Runs `tasker orchestrator`.
pub async fn run(mut config: EngineConfig, args: OrchestratorArgs) -> Result<i32, CliError> {
    if let Some(mode) = args.wakeup_mode {
        config.wakeup_mode = mode;
    }
    if let Some(bind) = args.api_bind {
        config.api.bind = bind;
    }
    if args.no_api {
        config.api.enabled = false;
    }
    let mut termination = Termination::install()?;
    if !args.templates.is_dir() {
        return Err(CliError::BadInput(format!(
            "--templates `{}` is not a folder",
            args.templates.display()
        )));
    }
    // Every problem in every file, before touching the database.
    let registry = TemplateRegistry::load_dir(&args.templates, None).map_err(|e| CliError::BadInput(e.to_string()))?;
    let store = super::tasker_store_with(&config.database_url, config.store_options()).await?;
    let clock = clock::system();
    let records = template_records(&registry);
    if let Err(e) = store.template_register_many(records, clock.now_ms()).await {
        store.close().await;
        return Err(CliError::Failed(format!("cannot register templates: {e}")));
    }
    for t in registry.list() {
        eprintln!("registered {}  ({})", t.template.key(), t.origin);
        tracing::info!(template = %t.template.key(), origin = %t.origin, content_hash = %t.content_hash, "template registered");
    }
    let count = registry.list().len();
    let counters = store.clone();
    let engine = Arc::new(Engine::start_with(
        store,
        clock,
        config.clone(),
        HandlerRegistry::new(),
        registry,
        vec![],
    ));
    let api = match start_api(&engine, &config).await {
        Ok(api) => api,
        Err(e) => {
            engine.stop(std::time::Duration::ZERO).await;
            return Err(e);
        }
    };
    eprintln!(
        "orchestrator running: {count} template(s), wake-up mode {}; stop with SIGTERM or SIGINT",
        config.wakeup_mode
    );
    let signal = termination.wait().await;
    eprintln!("{signal} received: stopping");
    stop_api(api).await;
    engine
        .stop(std::time::Duration::from_millis(config.shutdown_grace_ms))
        .await;
    eprintln!("orchestrator stopped");
    // Read by `tasker-bench --processes` (round trips per step across processes).
    eprintln!(
        "store: {} round trip(s), {} statement(s)",
        counters.round_trip_count(),
        counters.statement_count()
    );
    Ok(EXIT_OK)
}

/// Starts the HTTP API when it is enabled.
#[cfg(feature = "api")]
async fn start_api(engine: &Arc<Engine>, config: &EngineConfig) -> Result<Option<crate::api::ApiServer>, CliError> {
    if !config.api.enabled {
        return Ok(None);
    }
    let api = crate::api::ApiServer::start(engine.clone(), &config.api)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    eprintln!("api listening on http://{}", api.local_addr());
    Ok(Some(api))
}

#[cfg(feature = "api")]
async fn stop_api(api: Option<crate::api::ApiServer>) {
    if let Some(api) = api {
        api.stop().await;
    }
}

/// A build without the `api` feature has no HTTP API.
#[cfg(not(feature = "api"))]
async fn start_api(_engine: &Arc<Engine>, config: &EngineConfig) -> Result<Option<()>, CliError> {
    if config.api.enabled {
        eprintln!("warning: this build has no HTTP API (the `api` feature is off)");
    }
    Ok(None)
}

#[cfg(not(feature = "api"))]
async fn stop_api(_api: Option<()>) {}
