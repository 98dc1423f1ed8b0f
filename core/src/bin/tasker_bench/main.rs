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
//!   be batched;
//! - `decision_p50_ms` / `batch_p50_ms` ([`dynamic`]): submit → complete latency
//!   of the conditional-approval decision example and of the 1,000-row CSV batch
//!   example (5 batch workers).
//!
//! `--quick` runs small sizes (a smoke run for the test suite; its figures are
//! not meaningful). Run the real thing with `cargo make bench` (release build).
//! `--postgres ADMIN_URL` runs the same measurements on PostgreSQL: each phase gets
//! a fresh database created through ADMIN_URL (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards.
//!
//! With `--postgres`, two other measurements replace the one-process run:
//! - `--processes` ([`processes`]): orchestrator and worker as separate `tasker`
//!   processes on this machine, tasks submitted from the bench process;
//! - `--claim-scaling` ([`claim_scaling`]): claim latency with few vs many finished
//!   tasks in the tables.
//!
//! `--api` ([`api`]) measures task creation in process and over the HTTP API
//! (P50 of one client, creates/s of 8 concurrent clients); with `--postgres`, on
//! PostgreSQL.
//!
//! `--bridge` ([`bridge`]) measures the language bindings' polling contract on a
//! loopback bridge (no database work), in Rust, at batch sizes 1 and 64.
//!
//! `--dynamic` runs only the decision and batch workflows ([`dynamic`]), on SQLite
//! or, with `--postgres ADMIN_URL`, on PostgreSQL.

mod api;
mod bridge;
mod claim_scaling;
mod dynamic;
mod processes;

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

const LINEAR_YAML: &str = include_str!("../../../../examples/linear.yaml");
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
    dynamic_warmup: usize,
    dynamic_tasks: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let postgres = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let sizes = if quick {
        Sizes {
            linear_warmup: 5,
            linear_tasks: 30,
            throughput_tasks: 1_000,
            dynamic_warmup: 2,
            dynamic_tasks: 10,
        }
    } else {
        Sizes {
            linear_warmup: 50,
            linear_tasks: 300,
            throughput_tasks: 20_000,
            dynamic_warmup: 20,
            dynamic_tasks: 200,
        }
    };
    let processes_mode = args.iter().any(|a| a == "--processes");
    let claim_scaling_mode = args.iter().any(|a| a == "--claim-scaling");
    if (processes_mode || claim_scaling_mode) && postgres.is_none() {
        eprintln!("--processes and --claim-scaling need --postgres ADMIN_URL");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bridge_mode = args.iter().any(|a| a == "--bridge");
    let dynamic_only = args.iter().any(|a| a == "--dynamic");
    let api_mode = args.iter().any(|a| a == "--api");
    let result = rt.block_on(async {
        if bridge_mode {
            return bridge::run(quick).await;
        }
        if dynamic_only {
            return dynamic::run_alone(&postgres, sizes.dynamic_warmup, sizes.dynamic_tasks, quick).await;
        }
        if api_mode {
            return api::run(quick, postgres).await;
        }
        match postgres {
            Some(admin) if processes_mode || claim_scaling_mode => {
                if processes_mode {
                    processes::run(&admin, quick).await?;
                }
                if claim_scaling_mode {
                    claim_scaling::run(&admin, quick).await?;
                }
                Ok(())
            }
            postgres => run(sizes, quick, postgres).await,
        }
    });
    if let Err(e) = result {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// Where one phase's database lives: a temp SQLite file, or a fresh PostgreSQL database.
struct Database {
    url: String,
    _dir: Option<tempfile::TempDir>,
    admin: Option<(String, String)>,
}

impl Database {
    async fn new(postgres: &Option<String>, phase: &str) -> Result<Self, Box<dyn std::error::Error>> {
        match postgres {
            None => {
                let dir = tempfile::tempdir()?;
                Ok(Self {
                    url: format!("sqlite://{}/bench.db", dir.path().display()),
                    _dir: Some(dir),
                    admin: None,
                })
            }
            Some(admin) => {
                use sqlx::Connection;
                let name = format!("tasker_bench_{}_{phase}", std::process::id());
                let mut conn = sqlx::postgres::PgConnection::connect(admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    admin: Some((admin.clone(), name)),
                })
            }
        }
    }

    async fn drop_now(self) {
        use sqlx::Connection;
        if let Some((admin, name)) = &self.admin {
            if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
    }
}

fn config(db: &Database) -> EngineConfig {
    EngineConfig {
        database_url: db.url.clone(),
        ..EngineConfig::default()
    }
}

fn template(yaml: &str) -> Arc<LoadedTemplate> {
    Arc::new(parse_str(yaml, "<bench>", None).expect("bench template is valid"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(sizes: Sizes, quick: bool, postgres: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    let backend = if postgres.is_some() {
        "PostgreSQL, one process"
    } else {
        "embedded SQLite"
    };
    println!(
        "# tasker-bench{} ({backend}, {} cores)",
        if quick { " --quick" } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // 1. Linear latency: one task at a time, submit → complete.
    let db = Database::new(&postgres, "linear").await?;
    let store = store::open(&db.url).await?;
    let engine = Engine::start_with(
        store.clone(),
        clock::system(),
        config(&db),
        tasker_core::examples::registry(),
        TemplateRegistry::new(),
        vec!["examples".into()],
    );
    let linear = template(LINEAR_YAML);
    let mut latencies = Vec::with_capacity(sizes.linear_tasks);
    let mut linear_statements = 0;
    let mut linear_trips = 0;
    for i in 0..sizes.linear_warmup + sizes.linear_tasks {
        let before = store.statement_count();
        let trips_before = store.round_trip_count();
        let t0 = Instant::now();
        let created = engine
            .submit(TaskSubmission::new(
                TemplateRef::Loaded(linear.clone()),
                json!({ "n": (i % 7) + 2 }),
            ))
            .await?;
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
    db.drop_now().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&latencies, 0.50);
    let p95 = percentile(&latencies, 0.95);
    let linear_stmt_per_step = linear_statements as f64 / (sizes.linear_tasks * 4) as f64;
    let linear_trips_per_step = linear_trips as f64 / (sizes.linear_tasks * 4) as f64;

    // 2. Throughput: create N one-step tasks up front, then run them all.
    let db = Database::new(&postgres, "throughput").await?;
    let cfg = config(&db);
    let store: SharedStore = store::open(&cfg.database_url).await?;
    let one_step = template(ONE_STEP_YAML);
    let requests = TaskRequest::new(store.clone(), clock::system(), Default::default(), "bench".into());
    let statements_before_create = store.statement_count();
    let trips_before_create = store.round_trip_count();
    let t_create = Instant::now();
    for chunk in (0..sizes.throughput_tasks).collect::<Vec<_>>().chunks(500) {
        let subs: Vec<TaskSubmission> = chunk
            .iter()
            .map(|i| TaskSubmission::new(TemplateRef::Loaded(one_step.clone()), json!({ "i": i })))
            .collect();
        for r in requests.create_many(&subs).await {
            r?;
        }
    }
    let create_s = t_create.elapsed().as_secs_f64();
    let engine = Engine::start_with(
        store.clone(),
        clock::system(),
        cfg,
        tasker_core::examples::registry(),
        TemplateRegistry::new(),
        vec!["bench".into()],
    );
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
    db.drop_now().await;
    let steps_per_s = sizes.throughput_tasks as f64 / run_s;
    let stmt_per_step = statements as f64 / sizes.throughput_tasks as f64;

    // 3. Dynamic workflows: a decision and a batch example, one task at a time.
    let dynamic = dynamic::run(&postgres, sizes.dynamic_warmup, sizes.dynamic_tasks).await?;

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
    println!(
        "round_trips_per_step={:.3}",
        trips as f64 / sizes.throughput_tasks as f64
    );
    println!("throughput_failed_steps={}", status.failed);
    println!("dynamic_tasks={}", sizes.dynamic_tasks);
    println!("decision_p50_ms={:.3}", dynamic.decision.p50);
    println!("decision_p95_ms={:.3}", dynamic.decision.p95);
    println!("batch_p50_ms={:.3}", dynamic.batch.p50);
    println!("batch_p95_ms={:.3}", dynamic.batch.p95);
    println!();
    println!("# against the targets (2 cores)");
    println!("linear P50 {p50:.2} ms vs ≤ 5 ms: {:.2}× the budget", p50 / 5.0);
    println!(
        "throughput {steps_per_s:.0} steps/s vs ≥ 3000: {:.2}× the target",
        steps_per_s / 3000.0
    );
    println!(
        "statements per step {stmt_per_step:.2} vs ≤ 4 amortised: {:.2}× the budget",
        stmt_per_step / 4.0
    );
    println!(
        "decision workflow P50 {:.2} ms vs ≤ 10 ms (PostgreSQL target): {:.2}× the budget",
        dynamic.decision.p50,
        dynamic.decision.p50 / 10.0
    );
    println!(
        "1000-row batch workflow P50 {:.2} ms vs ≤ 50 ms (PostgreSQL target): {:.2}× the budget",
        dynamic.batch.p50,
        dynamic.batch.p50 / 50.0
    );
    if quick {
        println!("(--quick: small sizes, debug builds; figures are a smoke test, not a measurement)");
    }
    Ok(())
}
