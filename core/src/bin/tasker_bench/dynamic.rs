//! The dynamic workflows of issue 8, submit → complete as the caller sees it, one
//! task at a time, in one engine process (SQLite, or PostgreSQL with `--postgres`):
//! - `decision_p50_ms`: `examples/conditional_approval.yaml` with amount 2500: the
//!   decision creates one branch (`manager_approval`) and the deferred convergence
//!   step; 4 steps run of 6 declared (validate, route, manager, finalize);
//! - `batch_p50_ms`: `examples/csv_batch.yaml` with 1,000 rows: the batchable
//!   analyzer, 5 batch workers of 200 rows (each saves one checkpoint halfway)
//!   and the convergence step: 7 steps.
//!
//! Targets (2 cores, PostgreSQL): decision ≤ 10 ms, batch ≤ 50 ms.
//!
//! `--dynamic` alone also prints `reference_linear_p50_ms`: the 4-step linear
//! example measured the same way in the same engine, to compare the decision's
//! 4-step chain with a chain that creates nothing at run time.

use super::{config, percentile, template, Database};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_core::clock;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::TaskSubmission;
use tasker_core::state::TaskState;
use tasker_core::store;
use tasker_core::template::{LoadedTemplate, TemplateRegistry};

const APPROVAL_YAML: &str = include_str!("../../../../examples/conditional_approval.yaml");
const CSV_YAML: &str = include_str!("../../../../examples/csv_batch.yaml");
const LINEAR_YAML: &str = include_str!("../../../../examples/linear.yaml");

type BoxError = Box<dyn std::error::Error>;

/// P50 and P95 latencies of one workflow, in ms.
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// The figures of this measurement.
pub struct DynamicFigures {
    /// The conditional-approval workflow.
    pub decision: Latency,
    /// The 1,000-row CSV batch workflow.
    pub batch: Latency,
    /// The 4-step linear example, for comparison.
    pub linear: Latency,
}

/// Runs both workflows `tasks` times each (after `warmup` unmeasured runs).
pub async fn run(postgres: &Option<String>, warmup: usize, tasks: usize) -> Result<DynamicFigures, BoxError> {
    let db = Database::new(postgres, "dynamic").await?;
    let store = store::open(&db.url).await?;
    let engine = Engine::start_with(
        store,
        clock::system(),
        config(&db),
        tasker_core::examples::registry(),
        TemplateRegistry::new(),
        vec!["examples".into()],
    );
    let approval = template(APPROVAL_YAML);
    let csv = template(CSV_YAML);
    let linear = measure(&engine, &template(LINEAR_YAML), json!({ "n": 2 }), 4, warmup, tasks).await?;
    let decision = measure(&engine, &approval, json!({ "amount": 2500 }), 4, warmup, tasks).await?;
    let batch = measure(&engine, &csv, json!({ "rows": 1000 }), 7, warmup, tasks).await?;
    engine.shutdown().await;
    db.drop_now().await;
    Ok(DynamicFigures {
        decision,
        batch,
        linear,
    })
}

/// `tasker-bench --dynamic`: only this measurement, with its own report.
pub async fn run_alone(postgres: &Option<String>, warmup: usize, tasks: usize, quick: bool) -> Result<(), BoxError> {
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "embedded SQLite"
    };
    println!(
        "# tasker-bench --dynamic{} ({backend}, one process, {} cores)",
        if quick { " --quick" } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let f = run(postgres, warmup, tasks).await?;
    println!("dynamic_tasks={tasks}");
    println!("decision_p50_ms={:.3}", f.decision.p50);
    println!("decision_p95_ms={:.3}", f.decision.p95);
    println!("batch_p50_ms={:.3}", f.batch.p50);
    println!("batch_p95_ms={:.3}", f.batch.p95);
    println!("reference_linear_p50_ms={:.3}", f.linear.p50);
    Ok(())
}

async fn measure(
    engine: &Engine,
    t: &Arc<LoadedTemplate>,
    context: Value,
    steps: usize,
    warmup: usize,
    tasks: usize,
) -> Result<Latency, BoxError> {
    let mut latencies = Vec::with_capacity(tasks);
    for i in 0..warmup + tasks {
        let t0 = Instant::now();
        let created = engine
            .submit(TaskSubmission::new(TemplateRef::Loaded(t.clone()), context.clone()))
            .await?;
        let task = engine.wait_for_task(created.task_uuid, Duration::from_secs(30)).await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if task.state != TaskState::Complete || task.steps.len() != steps {
            return Err(format!(
                "{} task ended {} with {} steps (expected complete with {steps})",
                t.template.name,
                task.state,
                task.steps.len()
            )
            .into());
        }
        if i >= warmup {
            latencies.push(ms);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Latency {
        p50: percentile(&latencies, 0.50),
        p95: percentile(&latencies, 0.95),
    })
}
