//! `tasker-bench`: the engine's speed on the embedded SQLite default.
//!
//! Prints (one `name=value` per line, then a summary against the targets):
//! - `linear_p50_ms` / `linear_p95_ms`: submit → complete latency of the 4-step
//!   linear example, tasks run one after another;
//! - `throughput_steps_per_s`: independent one-step tasks (trivial Rust handler),
//!   created up front, then run to the end by one engine;
//! - `statements_per_step` / `round_trips_per_step`: SQL statements and database
//!   round trips per step lifecycle (create, claim, complete, finalize), amortised
//!   over the throughput run; also the same for the linear runs, where little can
//!   be batched.
//!
//! `--quick` runs small sizes (a smoke run for the test suite; its figures are
//! not meaningful). Run the real thing with `cargo make bench` (release build).

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_core::clock;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::{TaskRequest, TaskSubmission};
use tasker_core::store::{self, SharedStore};
use tasker_core::template::{parse_str, LoadedTemplate, TemplateRegistry};

const LINEAR_YAML: &str = include_str!("../../../examples/linear.yaml");
const ONE_STEP_YAML: &str = r#"
namespace: bench
name: one_step
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: only
    handler: { callable: noop }
"#;

struct Sizes {
    linear_warmup: usize,
    linear_tasks: usize,
    throughput_tasks: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes { linear_warmup: 5, linear_tasks: 30, throughput_tasks: 1_000 }
    } else {
        Sizes { linear_warmup: 50, linear_tasks: 300, throughput_tasks: 20_000 }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(sizes, quick)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig { database_url: format!("sqlite://{}/bench.db", dir.display()), ..EngineConfig::default() }
}

fn template(yaml: &str) -> Arc<LoadedTemplate> {
    Arc::new(parse_str(yaml, "<bench>", None).expect("bench template is valid"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(sizes: Sizes, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    println!("# tasker-bench{} (embedded SQLite, {} cores)", if quick { " --quick" } else { "" }, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));

    // 1. Linear latency: one task at a time, submit → complete.
    let dir = tempfile::tempdir()?;
    let store = store::open(&config(dir.path()).database_url).await?;
    let engine = Engine::start_with(store.clone(), clock::system(), config(dir.path()), tasker_core::examples::registry(), TemplateRegistry::new(), vec!["examples".into()]);
    let linear = template(LINEAR_YAML);
    let mut latencies = Vec::with_capacity(sizes.linear_tasks);
    let mut linear_statements = 0;
    let mut linear_trips = 0;
    for i in 0..sizes.linear_warmup + sizes.linear_tasks {
        let before = store.statement_count();
        let trips_before = store.round_trip_count();
        let t0 = Instant::now();
        let created = engine.submit(TaskSubmission::new(TemplateRef::Loaded(linear.clone()), json!({ "n": (i % 7) + 2 }))).await?;
        let task = engine.wait_for_task(created.task_uuid, Duration::from_secs(30)).await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if task.state != tasker_core::state::TaskState::Complete {
            return Err(format!("linear task ended {}", task.state).into());
        }
        if i >= sizes.linear_warmup {
            latencies.push(ms);
            linear_statements += store.statement_count() - before;
            linear_trips += store.round_trip_count() - trips_before;
        }
    }
    engine.shutdown().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&latencies, 0.50);
    let p95 = percentile(&latencies, 0.95);
    let linear_stmt_per_step = linear_statements as f64 / (sizes.linear_tasks * 4) as f64;
    let linear_trips_per_step = linear_trips as f64 / (sizes.linear_tasks * 4) as f64;

    // 2. Throughput: create N one-step tasks up front, then run them all.
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path());
    let store: SharedStore = store::open(&cfg.database_url).await?;
    let one_step = template(ONE_STEP_YAML);
    let requests = TaskRequest::new(store.clone(), clock::system(), Default::default(), "bench".into());
    let statements_before_create = store.statement_count();
    let trips_before_create = store.round_trip_count();
    let t_create = Instant::now();
    for chunk in (0..sizes.throughput_tasks).collect::<Vec<_>>().chunks(500) {
        let subs: Vec<TaskSubmission> = chunk.iter().map(|i| TaskSubmission::new(TemplateRef::Loaded(one_step.clone()), json!({ "i": i }))).collect();
        for r in requests.create_many(&subs).await {
            r?;
        }
    }
    let create_s = t_create.elapsed().as_secs_f64();
    let engine = Engine::start_with(store.clone(), clock::system(), cfg, tasker_core::examples::registry(), TemplateRegistry::new(), vec!["bench".into()]);
    let t_run = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while engine.worker_status().succeeded < sizes.throughput_tasks as u64 {
        if Instant::now() > deadline {
            return Err("throughput run did not finish in 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let run_s = t_run.elapsed().as_secs_f64();
    let statements = store.statement_count() - statements_before_create;
    let trips = store.round_trip_count() - trips_before_create;
    let status = engine.worker_status();
    engine.shutdown().await;
    let steps_per_s = sizes.throughput_tasks as f64 / run_s;
    let stmt_per_step = statements as f64 / sizes.throughput_tasks as f64;

    println!("linear_tasks={}", sizes.linear_tasks);
    println!("linear_p50_ms={p50:.3}");
    println!("linear_p95_ms={p95:.3}");
    println!("linear_per_step_p50_ms={:.3}", p50 / 4.0);
    println!("linear_statements_per_step={linear_stmt_per_step:.2}");
    println!("linear_round_trips_per_step={linear_trips_per_step:.2}");
    println!("throughput_tasks={}", sizes.throughput_tasks);
    println!("throughput_steps_per_s={steps_per_s:.0}");
    println!("throughput_per_step_us={:.1}", 1e6 / steps_per_s);
    println!("create_tasks_per_s={:.0}", sizes.throughput_tasks as f64 / create_s);
    println!("statements_per_step={stmt_per_step:.2}");
    println!("round_trips_per_step={:.3}", trips as f64 / sizes.throughput_tasks as f64);
    println!("throughput_failed_steps={}", status.failed);
    println!();
    println!("# against the targets (2 cores)");
    println!("linear P50 {p50:.2} ms vs ≤ 5 ms: {:.2}× the budget", p50 / 5.0);
    println!("throughput {steps_per_s:.0} steps/s vs ≥ 3000: {:.2}× the target", steps_per_s / 3000.0);
    println!("statements per step {stmt_per_step:.2} vs ≤ 4 amortised: {:.2}× the budget", stmt_per_step / 4.0);
    if quick {
        println!("(--quick: small sizes, debug builds; figures are a smoke test, not a measurement)");
    }
    Ok(())
}
