//! `tasker-bench --postgres ADMIN_URL --claim-scaling`: does a claim stay as fast when
//! the tables hold many finished tasks? (Target: ≤ 1.5× from 10k to 1M.)
//!
//! In one fresh database: 1,000 ready one-step tasks are created through the Store
//! API (`TaskRequest`), then finished tasks are bulk-loaded beside them and
//! `step_claim_ready_many` (limit 64) is timed repeatedly, first with the small
//! number of finished tasks, then again after loading up to the large number. Each
//! timed claim is followed by an untimed `step_release_many` that hands the steps
//! back, so every claim finds the same 1,000 ready steps.
//!
//! The bulk load is the one place where the bench writes SQL itself (through sqlx,
//! not the store): set-based `INSERT … SELECT … FROM generate_series` of tasks in
//! state `complete`, each with one step in state `complete`, copied from a real task
//! row, with no audit rows (the claim does not read `task_transitions` /
//! `step_transitions`); their UUIDs are random (v4), not v7. It runs with
//! `session_replication_role = replica`, which skips the foreign-key checks.
//! The large size is 1M unless loading takes more than ~60 s here; the size reached is
//! printed (`claim_large_finished_tasks`), and the `_1m` figure is measured at it.

use super::{percentile, template, Database, ONE_STEP_YAML};
use serde_json::json;
use sqlx::Connection;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tasker_core::clock::{self, Clock};
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::{TaskRequest, TaskSubmission};
use tasker_core::store::{
    self, ReleaseReason, SharedStore, StepClaimReadyManyParams, StepReleaseManyParams, StoreOptions,
};
use tasker_core::template::TemplateRegistry;

type BoxError = Box<dyn std::error::Error>;

/// Tasks per bulk INSERT statement.
const CHUNK: i64 = 100_000;
/// Stop growing the large size once the load has taken this long.
const LOAD_BUDGET: Duration = Duration::from_secs(60);

/// Finished tasks `first..=last` (suffixes of their identity hashes), each with one
/// complete step, copied from the seed task `$3` and its step.
const BULK_SQL: &str = r#"
WITH seed AS (SELECT * FROM tasks WHERE task_uuid = $3),
new_tasks AS (
    INSERT INTO tasks (task_uuid, template_hash, namespace, name, version, state, context, identity_hash,
                       correlation_id, priority, hold_failed, step_count, created_at, updated_at, completed_at,
                       transition_event)
    SELECT gen_random_uuid(), seed.template_hash, seed.namespace, seed.name, seed.version, 'complete', seed.context,
           'bulk-' || g, gen_random_uuid(), 0, false, 1, seed.created_at - 86400000 + g, seed.created_at - 86400000 + g,
           seed.created_at - 86400000 + g, 'complete'
    FROM generate_series($1::bigint, $2::bigint) AS g, seed
    RETURNING task_uuid, created_at
)
INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                   handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state, attempts,
                   pending_parents, claim_seq, result, created_at, updated_at, started_at, completed_at, transition_event)
SELECT gen_random_uuid(), t.task_uuid, s.namespace, s.name, s.template_step_name, s.step_type, s.handler_callable,
       s.handler_method, s.handler_initialization, s.retry_policy, s.max_attempts, s.timeout_ms, 'complete', 1,
       0, 1, '{}'::jsonb, t.created_at, t.created_at, t.created_at, t.created_at, 'complete'
FROM new_tasks AS t, (SELECT st.* FROM steps AS st JOIN seed ON st.task_uuid = seed.task_uuid) AS s
"#;

/// Claim latencies in µs, sorted.
async fn time_claims(
    store: &SharedStore,
    clock: &Arc<dyn Clock>,
    warmup: usize,
    samples: usize,
) -> Result<Vec<f64>, BoxError> {
    let mut out = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let now = clock.now_ms();
        let params = StepClaimReadyManyParams {
            namespace: "bench".into(),
            limit: 64,
            now,
            lease_ms: 30_000,
            worker_id: "bench-claimer".into(),
        };
        let t0 = Instant::now();
        let claimed = store.step_claim_ready_many(params).await?;
        let us = t0.elapsed().as_secs_f64() * 1e6;
        if claimed.len() != 64 {
            return Err(format!("a claim took {} steps, expected 64", claimed.len()).into());
        }
        if i >= warmup {
            out.push(us);
        }
        let claims = claimed.iter().map(|c| (c.step_uuid, c.claim_seq)).collect();
        store
            .step_release_many(StepReleaseManyParams {
                claims,
                reason: ReleaseReason::Released,
                now: clock.now_ms(),
                processor: "bench".into(),
            })
            .await?;
    }
    out.sort_by(|a, b| a.total_cmp(b));
    Ok(out)
}

/// Loads finished tasks `from+1..=to` in chunks; stops early once `budget` has passed
/// (if given). Returns the number of finished tasks in the tables afterwards.
async fn load(
    conn: &mut sqlx::PgConnection,
    seed: uuid::Uuid,
    from: i64,
    to: i64,
    budget: Option<Duration>,
) -> Result<i64, BoxError> {
    let t0 = Instant::now();
    let mut done = from;
    while done < to {
        if budget.is_some_and(|b| t0.elapsed() > b) {
            break;
        }
        let last = (done + CHUNK).min(to);
        sqlx::query(BULK_SQL)
            .bind(done + 1)
            .bind(last)
            .bind(seed)
            .execute(&mut *conn)
            .await?;
        done = last;
    }
    // Fresh statistics (and no dead rows from the previous round of claims) for the planner.
    sqlx::query("VACUUM ANALYZE tasks").execute(&mut *conn).await?;
    sqlx::query("VACUUM ANALYZE steps").execute(&mut *conn).await?;
    Ok(done)
}

/// Runs the measurement; `quick` uses small sizes.
pub async fn run(admin: &str, quick: bool) -> Result<(), BoxError> {
    let (small, large, samples) = if quick {
        (1_000, 20_000, 30)
    } else {
        (10_000, 1_000_000, 300)
    };
    println!(
        "# tasker-bench{} --claim-scaling (PostgreSQL, one process)",
        if quick { " --quick" } else { "" }
    );
    let db = Database::new(&Some(admin.to_string()), "claim_scaling").await?;
    let result = measure(&db, small, large, samples).await;
    db.drop_now().await;
    let (p_small, p_large, large_reached, load_s) = result?;
    let (p50_small, p95_small) = (percentile(&p_small, 0.5), percentile(&p_small, 0.95));
    let (p50_large, p95_large) = (percentile(&p_large, 0.5), percentile(&p_large, 0.95));
    let ratio = p50_large / p50_small;
    println!("claim_ready_tasks=1000");
    println!("claim_limit=64");
    println!("claim_samples={samples}");
    println!("claim_small_finished_tasks={small}");
    println!("claim_large_finished_tasks={large_reached}");
    println!("claim_large_load_s={load_s:.1}");
    println!("claim_p50_us_10k={p50_small:.0}");
    println!("claim_p95_us_10k={p95_small:.0}");
    println!("claim_p50_us_1m={p50_large:.0}");
    println!("claim_p95_us_1m={p95_large:.0}");
    println!("claim_ratio={ratio:.2}");
    println!();
    if large_reached < large {
        println!(
            "(the large size is {large_reached}, not {large}: loading more took longer than {} s here)",
            LOAD_BUDGET.as_secs()
        );
    }
    println!("claim P50 at {large_reached} vs {small} finished tasks: {ratio:.2}× (target ≤ 1.5×)");
    if quick {
        println!("(--quick: small sizes, debug builds; figures are a smoke test, not a measurement)");
    }
    Ok(())
}

async fn measure(
    db: &Database,
    small: i64,
    large: i64,
    samples: usize,
) -> Result<(Vec<f64>, Vec<f64>, i64, f64), BoxError> {
    let store = store::open_with(&db.url, StoreOptions { listen: false }).await?;
    let clock = clock::system();
    let requests = TaskRequest::new(
        store.clone(),
        clock.clone(),
        Arc::new(RwLock::new(TemplateRegistry::new())),
        "bench".into(),
    );
    let one_step = template(ONE_STEP_YAML);
    // 1,000 ready tasks through the Store API; the first one is also the bulk load's model.
    let mut seed = None;
    for chunk in (0..1_000).collect::<Vec<_>>().chunks(500) {
        let subs: Vec<TaskSubmission> = chunk
            .iter()
            .map(|i| TaskSubmission::new(TemplateRef::Loaded(one_step.clone()), json!({ "i": i })))
            .collect();
        for r in requests.create_many(&subs).await {
            seed = seed.or(Some(r?.task_uuid));
        }
    }
    let seed = seed.ok_or("no task created")?;

    let mut conn = sqlx::postgres::PgConnection::connect(&db.url).await?;
    // Skips the foreign-key checks for the bulk load; needs a superuser.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await?;

    let loaded = load(&mut conn, seed, 0, small, None).await?;
    let p_small = time_claims(&store, &clock, 10, samples).await?;
    let t_load = Instant::now();
    let reached = load(&mut conn, seed, loaded, large, Some(LOAD_BUDGET)).await?;
    let load_s = t_load.elapsed().as_secs_f64();
    let p_large = time_claims(&store, &clock, 10, samples).await?;
    conn.close().await?;
    store.close().await;
    Ok((p_small, p_large, reached, load_s))
}
