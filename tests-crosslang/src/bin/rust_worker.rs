//! `crosslang-rust-worker`: the Rust language's worker for the conformance suite.
//! Runs the handlers of `tests-crosslang/handlers/rust/` on an embedded engine
//! serving the given namespaces, with the arguments and the `READY` line every
//! language's worker shares (see `tasker_crosslang::workers`).

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use tasker_core::clock;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::template::{load_file, TemplateRegistry};
use tokio::signal::unix::{signal, SignalKind};

/// Arguments shared by every language's conformance worker.
#[derive(Debug, Parser)]
#[command(name = "crosslang-rust-worker", about = "Runs the Rust conformance handlers")]
struct Args {
    /// The database (sqlite://PATH or postgres://...).
    #[arg(long)]
    database_url: String,
    /// A namespace to claim steps from; repeat for several.
    #[arg(long = "namespace", required = true)]
    namespaces: Vec<String>,
    /// A template file to load (for the domain events its steps declare).
    #[arg(long = "template")]
    templates: Vec<PathBuf>,
    /// Handlers running at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Polling interval for steps other processes made ready.
    #[arg(long, default_value_t = 50)]
    poll_interval_ms: u64,
    /// Accepted for symmetry with the host languages (Rust handlers are built in).
    #[arg(long)]
    builtin_handlers: bool,
    /// Swap a handler for its deliberately broken variant.
    #[arg(long = "break")]
    broken: Vec<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("crosslang-rust-worker: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let handlers = tasker_crosslang::handlers::registry(&args.broken)?;
    let mut templates = TemplateRegistry::new();
    for t in &args.templates {
        templates.insert(load_file(t, None).map_err(|e| e.to_string())?);
    }
    let mut config = EngineConfig::load(None).map_err(|e| e.to_string())?;
    config.database_url = args.database_url.clone();
    config.concurrency = args.concurrency;
    config.poll_interval_ms = args.poll_interval_ms;
    let store = tasker_core::store::open_with(&config.database_url, config.store_options())
        .await
        .map_err(|e| e.to_string())?;
    let engine = Engine::start_with(
        store,
        clock::system(),
        config,
        handlers,
        templates,
        args.namespaces.clone(),
    );
    let ready = serde_json::json!({
        "language": tasker_crosslang::handlers::LANGUAGE,
        "worker_id": engine.worker_status().worker_id,
        "runtime": format!("tasker-core {}", env!("CARGO_PKG_VERSION")),
    });
    println!("READY {ready}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let report = engine.shutdown().await;
    eprintln!("drained {} step(s), handed back {}", report.drained, report.released);
    Ok(())
}
