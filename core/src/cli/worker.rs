//! `tasker worker`: claims and runs steps of the given namespaces with the built-in
//! Rust example handlers, writing results (and moving tasks on) where they arrive.
//! Runs until SIGTERM or SIGINT, then drains: stops claiming, lets running handlers
//! finish within `shutdown_grace_ms` and writes their results, and hands the steps
//! still running back to the queue (attempt not counted). Exit 0.

use super::signal::Termination;
use super::{CliError, EXIT_OK};
use crate::clock;
use crate::config::{EngineConfig, WakeupMode};
use crate::engine::Engine;
use crate::template::TemplateRegistry;
use clap::Args;

/// Arguments of `tasker worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A namespace whose steps this worker runs; repeat for several.
    #[arg(long = "namespace", required = true)]
    namespaces: Vec<String>,
    /// Handlers that may run at once (overrides `concurrency`).
    #[arg(long)]
    concurrency: Option<usize>,
    /// How this worker learns of new work: hybrid (default), event or polling.
    #[arg(long)]
    wakeup_mode: Option<WakeupMode>,
}

/// Runs `tasker worker`.
pub async fn run(mut config: EngineConfig, args: WorkerArgs) -> Result<i32, CliError> {
    if let Some(mode) = args.wakeup_mode {
        config.wakeup_mode = mode;
    }
    if let Some(n) = args.concurrency {
        config.concurrency = n;
    }
    let mut termination = Termination::install()?;
    let store = super::tasker_store_with(&config.database_url, config.store_options()).await?;
    let handlers = crate::examples::registry();
    let callables = handlers.callables().join(", ");
    let counters = store.clone();
    let engine = Engine::start_with(
        store,
        clock::system(),
        config.clone(),
        handlers,
        TemplateRegistry::new(),
        args.namespaces.clone(),
    );
    eprintln!(
        "worker running: namespaces {}, concurrency {}, wake-up mode {}, handlers {callables}; stop with SIGTERM or SIGINT",
        args.namespaces.join(", "),
        config.concurrency,
        config.wakeup_mode
    );
    let signal = termination.wait().await;
    let running = engine.worker_status().in_flight;
    eprintln!(
        "{signal} received: draining {running} running step(s) (grace {} ms)",
        config.shutdown_grace_ms
    );
    let report = engine.shutdown().await;
    eprintln!("drained: {} step(s) finished and their results written", report.drained);
    eprintln!("handed back: {} step(s) returned to the queue", report.released);
    // Read by `tasker-bench --processes` (round trips per step across processes).
    eprintln!(
        "store: {} round trip(s), {} statement(s)",
        counters.round_trip_count(),
        counters.statement_count()
    );
    Ok(EXIT_OK)
}
