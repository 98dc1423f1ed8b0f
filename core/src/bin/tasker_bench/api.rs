//! `--api`: the cost of creating a task, in process and over the HTTP API.
//!
//! An orchestration-only engine (like `tasker orchestrator`: no worker, so the
//! tasks just wait) serves the API on a free local port. Prints:
//! - `api_create_p50_ms_inprocess` / `_p95_`: `Engine::try_submit` (admission,
//!   TaskRequest's queue, one creation transaction), one request at a time;
//! - `api_create_p50_ms_http` / `_p95_`: `POST /v1/tasks` from one HTTP client with
//!   a kept-alive connection, one request at a time (JSON, auth off, the response
//!   read);
//! - `api_creates_per_s_8_clients`: `POST /v1/tasks` from 8 concurrent clients.
//!
//! Targets (2 cores): P50 over HTTP ≤ 3 ms, ≥ 2,000 creates/s with 8 clients.

use super::{percentile, template, Database, ONE_STEP_YAML};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tasker_core::api::ApiServer;
use tasker_core::clock;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::TaskSubmission;
use tasker_core::template::TemplateRegistry;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Clients of the concurrent run.
const CLIENTS: usize = 8;

fn summary(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    (percentile(&ms, 0.50), percentile(&ms, 0.95))
}

/// Runs the three measurements on SQLite (or PostgreSQL with `postgres`).
pub async fn run(quick: bool, postgres: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    let (sequential, concurrent) = if quick { (200, 800) } else { (3_000, 40_000) };
    let db = Database::new(&postgres, "api").await?;
    let mut cfg = EngineConfig {
        database_url: db.url.clone(),
        ..EngineConfig::default()
    };
    cfg.api.bind = "127.0.0.1:0".into();
    cfg.backpressure.max_ready_steps = u64::MAX;
    let store = tasker_core::store::open(&cfg.database_url).await?;
    let mut registry = TemplateRegistry::new();
    let one_step = template(ONE_STEP_YAML);
    registry.insert_shared(one_step.clone());
    let engine = Arc::new(Engine::start_with(
        store,
        clock::system(),
        cfg.clone(),
        tasker_core::worker::HandlerRegistry::new(),
        registry,
        vec![],
    ));
    let server = ApiServer::start(engine.clone(), &cfg.api).await?;
    let url = format!("http://{}/v1/tasks", server.local_addr());
    let body = json!({"namespace": "bench", "name": "one_step", "context": {}});

    // Warm up both paths.
    let client = reqwest::Client::new();
    for _ in 0..50 {
        client.post(&url).json(&body).send().await?.error_for_status()?;
    }

    let mut inprocess = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let t0 = Instant::now();
        engine
            .try_submit(TaskSubmission::new(TemplateRef::Loaded(one_step.clone()), json!({})))
            .await?;
        inprocess.push(t0.elapsed().as_secs_f64() * 1000.0);
    }

    let mut http = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let t0 = Instant::now();
        let resp = client.post(&url).json(&body).send().await?;
        let status = resp.status();
        resp.bytes().await?;
        if status.as_u16() != 201 {
            return Err(format!("POST /v1/tasks answered {status}").into());
        }
        http.push(t0.elapsed().as_secs_f64() * 1000.0);
    }

    let per_client = concurrent / CLIENTS;
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (url, body) = (url.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..per_client {
                let resp = client.post(&url).json(&body).send().await?;
                let status = resp.status();
                resp.bytes().await?;
                if status.as_u16() != 201 {
                    return Err::<(), BoxError>(format!("POST /v1/tasks answered {status}").into());
                }
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await?.map_err(|e| e.to_string())?;
    }
    let creates_per_s = (per_client * CLIENTS) as f64 / t0.elapsed().as_secs_f64();

    server.stop().await;
    engine.stop(std::time::Duration::ZERO).await;
    db.drop_now().await;

    let (in_p50, in_p95) = summary(inprocess);
    let (http_p50, http_p95) = summary(http);
    println!(
        "# tasker-bench --api{} ({}, {} cores)",
        if quick { " --quick" } else { "" },
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "embedded SQLite"
        },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("api_create_p50_ms_inprocess={in_p50:.3}");
    println!("api_create_p95_ms_inprocess={in_p95:.3}");
    println!("api_create_p50_ms_http={http_p50:.3}");
    println!("api_create_p95_ms_http={http_p95:.3}");
    println!("api_creates_per_s_8_clients={creates_per_s:.0}");
    println!();
    println!("# against the targets (2 cores)");
    println!(
        "HTTP create P50 {http_p50:.2} ms vs ≤ 3 ms: {:.2}× the budget",
        http_p50 / 3.0
    );
    println!(
        "8 clients {creates_per_s:.0} creates/s vs ≥ 2000: {:.2}× the target",
        creates_per_s / 2000.0
    );
    if quick {
        println!("(--quick: small sizes, debug builds; figures are a smoke test, not a measurement)");
    }
    Ok(())
}
