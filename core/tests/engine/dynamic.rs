//! Decision points and batch processing through the whole engine: the examples,
//! refused outcomes, and batch workers resuming from their checkpoints after a
//! retry and after their worker crashed. Part of the engine suite (`engine.rs`),
//! each case run on SQLite and on PostgreSQL.

use super::*;
use std::sync::Mutex;
use tasker_core::examples::csv_batch::generate_csv;
use tasker_core::worker::handler::{Batchable, Decision};
use tasker_core::worker::{StepContext, StepHandler};

fn names(task: &TaskView) -> Vec<&str> {
    task.steps.iter().map(|s| s.name.as_str()).collect()
}

fn result<'a>(task: &'a TaskView, name: &str) -> &'a Value {
    step(task, name)
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{name} has no result"))
}

async fn step_count(store: &SharedStore, task: Uuid) -> u32 {
    store
        .task_list(Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.task_uuid == task)
        .unwrap()
        .step_count
}

pub(super) async fn the_approval_example_runs_only_the_approvals_an_amount_needs(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let t = example("conditional_approval");
    for (amount, ran, approvals) in [
        (250, vec!["auto_approve"], json!(["auto"])),
        (2500, vec!["manager_approval"], json!(["manager"])),
        (
            7500,
            vec!["manager_approval", "finance_approval"],
            json!(["finance", "manager"]),
        ),
        (0, vec![], json!([])),
    ] {
        let task = run_to_end(&engine, &t, json!({"amount": amount})).await;
        assert_eq!(task.state, TaskState::Complete, "{amount}: {task:?}");
        let mut want = vec!["validate_request", "route_approval"];
        want.extend(ran.iter().copied());
        want.push("finalize_approval");
        assert_eq!(names(&task), want, "amount {amount}");
        assert_eq!(
            result(&task, "finalize_approval"),
            &json!({"approved": true, "approvals": approvals, "amount": amount})
        );
        assert_eq!(step_count(&env.store, task.task_uuid).await as usize, want.len());
        for s in &task.steps {
            let events: Vec<String> = env
                .store
                .step_transitions(s.step_uuid)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.event)
                .collect();
            assert_eq!(events.first().map(String::as_str), Some("create"), "{}", s.name);
            assert_eq!(events.last().map(String::as_str), Some("complete"), "{}", s.name);
        }
    }
    engine.shutdown().await;
}

pub(super) async fn the_csv_example_sums_every_row_across_its_batches(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let t = example("csv_batch");
    let task = run_to_end(&engine, &t, json!({"rows": 1000})).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(
        names(&task),
        [
            "analyze_csv",
            "process_csv_batch_001",
            "process_csv_batch_002",
            "process_csv_batch_003",
            "process_csv_batch_004",
            "process_csv_batch_005",
            "aggregate_csv"
        ]
    );
    // The expected sums, computed here from the CSV itself.
    let (mut quantity, mut revenue) = (0i64, 0i64);
    for line in generate_csv(1000).lines().skip(1) {
        let f: Vec<i64> = line.split(',').skip(2).map(|v| v.parse().unwrap()).collect();
        quantity += f[0];
        revenue += f[0] * f[1];
    }
    assert_eq!(
        result(&task, "aggregate_csv"),
        &json!({"rows": 1000, "quantity": quantity, "revenue_cents": revenue, "batches": 5})
    );
    assert_eq!(result(&task, "process_csv_batch_002")["rows"], 200);

    let empty = run_to_end(&engine, &t, json!({"rows": 0})).await;
    assert_eq!(
        names(&empty),
        ["analyze_csv", "aggregate_csv"],
        "no_batches runs the convergence"
    );
    assert_eq!(
        result(&empty, "aggregate_csv"),
        &json!({"rows": 0, "quantity": 0, "revenue_cents": 0, "batches": 0})
    );
    engine.shutdown().await;
}

/// A decision step whose handler names `initialization.names`.
struct Chooser;

#[async_trait::async_trait]
impl StepHandler for Chooser {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        let names: Vec<&str> = ctx.initialization["names"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.create_steps(&names)
    }
}
impl Decision for Chooser {}

fn decision_template(decision_callable: &str, names: &str) -> Arc<LoadedTemplate> {
    yaml(&format!(
        "namespace: t\nname: choose\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
         \x20 - {{ name: d, type: decision, handler: {{ callable: {decision_callable}, initialization: {{ names: {names} }} }}, retry: {{ max_attempts: 3 }} }}\n\
         \x20 - {{ name: a, dependencies: [d], handler: {{ callable: noop }} }}\n\
         \x20 - {{ name: b, dependencies: [d], handler: {{ callable: noop }} }}\n\
         \x20 - {{ name: c, type: deferred_convergence, dependencies: [a, b], handler: {{ callable: noop }} }}\n"
    ))
}

pub(super) async fn a_decision_naming_an_undeclared_step_fails_without_retry_and_creates_nothing(env: Env) {
    let mut handlers = tasker_core::examples::registry();
    handlers.register("choose", Chooser);
    let engine = start(&env, clock::system(), handlers, &["t"]);
    let task = run_to_end(&engine, &decision_template("choose", "[a, nope]"), json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(names(&task), ["d"], "nothing was created");
    let d = step(&task, "d");
    assert_eq!((d.state, d.attempts), (StepState::Error, 1), "not retried");
    let error = d.error.as_ref().unwrap();
    assert_eq!(error["error_type"], "invalid_decision");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`nope`, which is not a step of template `t/choose@1.0.0` (its branches: a, b)"),
        "{error}"
    );

    // The same template with a valid choice runs the branch and the convergence.
    let task = run_to_end(&engine, &decision_template("choose", "[b]"), json!({})).await;
    assert_eq!((task.state, names(&task)), (TaskState::Complete, vec!["d", "b", "c"]));
    engine.shutdown().await;
}

pub(super) async fn a_decision_or_batchable_step_without_an_outcome_fails(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let task = run_to_end(&engine, &decision_template("noop", "[]"), json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    let error = step(&task, "d").error.clone().unwrap();
    assert_eq!(
        (error["error_type"].clone(), step(&task, "d").attempts),
        (json!("invalid_decision"), 1)
    );
    assert!(
        error["message"].as_str().unwrap().contains("decision_point_outcome"),
        "{error}"
    );

    let batch = yaml(
        "namespace: t\nname: b\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
         \x20 - { name: plan, type: batchable, handler: { callable: noop } }\n\
         \x20 - { name: work, type: batch_worker, dependencies: [plan], handler: { callable: noop } }\n",
    );
    let task = run_to_end(&engine, &batch, json!({})).await;
    let error = step(&task, "plan").error.clone().unwrap();
    assert_eq!(error["error_type"], "invalid_batches");
    engine.shutdown().await;
}

/// A batchable step asking for `initialization.total` items in the template's batch size.
struct Planner;

#[async_trait::async_trait]
impl StepHandler for Planner {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        self.create_batches(ctx.initialization["total"].as_u64().unwrap_or(0), None)
    }
}
impl Batchable for Planner {}

fn sum_template(total: u64, max_batches: u32, worker_extra: &str) -> Arc<LoadedTemplate> {
    yaml(&format!(
        "namespace: t\nname: sums\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
         \x20 - {{ name: plan, type: batchable, handler: {{ callable: planner, initialization: {{ total: {total} }} }}, batch_config: {{ batch_size: 50, max_batches: {max_batches} }} }}\n\
         \x20 - {{ name: work, type: batch_worker, dependencies: [plan], handler: {{ callable: summer }}{worker_extra} }}\n\
         \x20 - {{ name: total, type: deferred_convergence, dependencies: [work], handler: {{ callable: adder }} }}\n"
    ))
}

pub(super) async fn too_many_batches_fail_the_batchable_step(env: Env) {
    let mut handlers = tasker_core::examples::registry();
    handlers.register("planner", Planner);
    let engine = start(&env, clock::system(), handlers, &["t"]);
    let task = run_to_end(&engine, &sum_template(1000, 4, ""), json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(names(&task), ["plan"]);
    let error = step(&task, "plan").error.clone().unwrap();
    assert_eq!(error["error_type"], "too_many_batches");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("20 batches (1000 items, 50 per batch), more than its batch_config.max_batches (4)"),
        "{error}"
    );
    engine.shutdown().await;
}

/// What the summing workers saw: (step, attempt, first item of the attempt).
type Starts = Arc<Mutex<Vec<(String, u32, u64)>>>;

/// How the worker of batch `002` misbehaves on its first run.
#[derive(Clone, Copy, PartialEq)]
enum Trouble {
    /// Saves a checkpoint at item 70, then fails (retryable).
    FailAfterCheckpoint,
    /// Saves a checkpoint at item 70, tells the test, then hangs until its process dies.
    HangAfterCheckpoint,
}

/// Handlers for `sum_template`: `planner`; `summer` adds up the item numbers of its
/// range (saving `{cursor, data: partial sum}` every 10 items, resuming from a
/// checkpoint); `adder` adds the batches' sums.
fn summing_handlers(
    starts: Starts,
    trouble: Trouble,
    checkpointed: Option<tokio::sync::mpsc::Sender<()>>,
) -> HandlerRegistry {
    let mut handlers = tasker_core::examples::registry();
    handlers.register("planner", Planner);
    let troubled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    handlers.register_fn("summer", move |ctx| {
        let (starts, troubled, checkpointed) = (starts.clone(), troubled.clone(), checkpointed.clone());
        async move {
            let (start, end) = ctx.cursor_range().expect("a batch worker has a range");
            starts.lock().unwrap().push((ctx.step_name.clone(), ctx.attempt, start));
            let mut sum = ctx
                .checkpoint
                .as_ref()
                .and_then(|c| c["data"]["sum"].as_u64())
                .unwrap_or(0);
            for i in start..end {
                sum += i;
                let next = i + 1;
                if next % 10 == 0 && next < end {
                    ctx.save_checkpoint(json!(next), json!({ "sum": sum })).await.unwrap();
                    if next == 70 && ctx.step_name == "work_002" && !troubled.swap(true, Ordering::SeqCst) {
                        match trouble {
                            Trouble::FailAfterCheckpoint => {
                                return StepResult::failure("lost the connection at item 70", "io_error")
                            }
                            Trouble::HangAfterCheckpoint => {
                                if let Some(tx) = &checkpointed {
                                    let _ = tx.send(()).await;
                                }
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                }
            }
            StepResult::success(json!({ "sum": sum }))
        }
    });
    handlers.register_fn("adder", |ctx| async move {
        let sum: u64 = ctx
            .dependency_results
            .values()
            .filter_map(|r| r.get("sum").and_then(Value::as_u64))
            .sum();
        StepResult::success(json!({ "sum": sum }))
    });
    handlers
}

fn starts_of(starts: &Starts, name: &str) -> Vec<(u32, u64)> {
    starts
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, a, s)| (*a, *s))
        .collect()
}

pub(super) async fn a_retried_batch_worker_resumes_from_its_checkpoint(env: Env) {
    let starts: Starts = Arc::default();
    let handlers = summing_handlers(starts.clone(), Trouble::FailAfterCheckpoint, None);
    let engine = start(&env, clock::system(), handlers, &["t"]);
    let t = sum_template(100, 10, ", retry: { max_attempts: 3, backoff: none }");
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(starts_of(&starts, "work_001"), [(1, 0)]);
    assert_eq!(
        starts_of(&starts, "work_002"),
        [(1, 50), (2, 70)],
        "the retry starts at the checkpoint, not at the range's start"
    );
    assert_eq!(step(&task, "work_002").attempts, 2);
    // Every item counted exactly once: 0 + 1 + ... + 99.
    assert_eq!(result(&task, "total"), &json!({ "sum": 4950 }));
    assert_eq!(result(&task, "work_002"), &json!({ "sum": (50..100).sum::<u64>() }));
    engine.shutdown().await;
}

pub(super) async fn a_batch_worker_whose_process_died_resumes_from_its_checkpoint(env: Env) {
    let clock = ManualClock::new(T0);
    let starts: Starts = Arc::default();
    let (checkpointed, mut told) = tokio::sync::mpsc::channel(1);
    let t = sum_template(100, 10, ", timeout_seconds: 600");
    let cfg = EngineConfig {
        lease_ms: 2_000,
        ..config(&env.url)
    };

    // The first process: runs the task until work_002 has checkpointed at item 70
    // and hangs; then it dies (its runtime is dropped: no release, no result).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let (clock, starts, cfg, t, url) = (clock.clone(), starts.clone(), cfg.clone(), t.clone(), env.url.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let uuid = rt.block_on(async move {
                let store = store::open(&url).await.unwrap();
                let handlers = summing_handlers(starts, Trouble::HangAfterCheckpoint, Some(checkpointed));
                let engine = Engine::start_with(store, clock, cfg, handlers, TemplateRegistry::new(), vec!["t".into()]);
                let uuid = submit(&engine, &t, json!({})).await;
                let _ = stopped.await;
                // It dies without shutting down: no drain, no release. Dropping the
                // handle stops nothing; dropping the runtime below ends every task
                // and closes the connections (an open transaction rolls back, as
                // when a process dies).
                drop(engine);
                uuid
            });
            rt.shutdown_background();
            uuid
        })
    };
    tokio::time::timeout(Duration::from_secs(30), told.recv())
        .await
        .expect("work_002 checkpoints")
        .unwrap();
    stop.send(()).unwrap();
    let uuid = tokio::task::spawn_blocking(move || first.join().unwrap())
        .await
        .unwrap();

    // Time passes beyond the lease; another process sweeps the lost claim and
    // runs the step again from its checkpoint.
    clock.advance(2_001);
    let handlers = summing_handlers(starts.clone(), Trouble::HangAfterCheckpoint, None);
    let engine = start_cfg(&env, clock.clone(), handlers, &["t"], cfg);
    engine.enqueuer().sweep_expired_leases().await.unwrap();
    let task = engine.wait_for_task(uuid, Duration::from_secs(20)).await.unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(
        starts_of(&starts, "work_002"),
        [(1, 50), (1, 70)],
        "resumed at the checkpoint; a lost lease does not count as an attempt"
    );
    let events: Vec<String> = env
        .store
        .step_transitions(step(&task, "work_002").step_uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.event)
        .collect();
    assert!(events.contains(&"lease_expired".to_string()), "{events:?}");
    assert_eq!(result(&task, "total"), &json!({ "sum": 4950 }));
    engine.shutdown().await;
}
