//! Behaviour of the embedded engine end to end: orchestration + worker + store,
//! each case on SQLite and on PostgreSQL. Decision points and batch processing
//! are in `engine/dynamic.rs`, the dead-letter queue in `engine/dlq.rs`, domain events
//! in `engine/domain_events.rs`.
//! Time-dependent behaviour (retry delays, leases) is driven by a ManualClock;
//! the only real waiting is for the engine to do what it was asked.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tasker_core::clock::{self, ManualClock, SharedClock};
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::{CreateTaskError, TaskSubmission};
use tasker_core::state::{StepState, TaskState};
use tasker_core::store::{self, SharedStore, StepClaimReadyManyParams, StepView, TaskView};
use tasker_core::template::{load_file, parse_str, LoadedTemplate, TemplateRegistry};
use tasker_core::worker::{HandlerRegistry, StepResult};
use uuid::Uuid;

const T0: i64 = 1_700_000_000_000;

mod support;

#[path = "engine/dynamic.rs"]
mod dynamic;
use dynamic::*;

#[path = "engine/dlq.rs"]
mod dlq;
use dlq::*;
#[path = "engine/domain_events.rs"]
mod domain_events;
use domain_events::*;

use support::backends::{postgres_env, Env};

async fn sqlite_env() -> Env {
    support::backends::sqlite_env("engine.db").await
}

per_backend!(
    every_example_computes_its_documented_value,
    retry_delays_follow_the_policy_on_the_clock,
    a_retry_after_hint_sets_the_delay,
    retryable_failures_stop_at_max_attempts,
    a_permanent_failure_fails_the_task_at_once_and_leaves_children_pending,
    a_template_can_hold_failed_tasks_for_an_operator,
    a_panicking_handler_becomes_a_failure_and_the_worker_keeps_working,
    a_handler_over_its_timeout_fails_as_a_timeout,
    an_unknown_handler_fails_the_step_permanently,
    many_concurrent_diamonds_each_finalize_exactly_once,
    the_worker_never_runs_more_handlers_than_its_concurrency,
    a_lost_workers_step_returns_after_its_lease_without_burning_an_attempt,
    a_claim_past_its_deadline_fails_as_a_timeout,
    shutdown_lets_running_handlers_finish_and_records_their_results,
    shutdown_hands_back_steps_still_running_after_the_grace_period,
    declared_domain_events_are_published_after_success,
    submissions_are_validated_and_deduplicated,
    steps_with_their_own_namespace_run_in_the_engine_serving_it,
    the_approval_example_runs_only_the_approvals_an_amount_needs,
    the_csv_example_sums_every_row_across_its_batches,
    a_decision_naming_an_undeclared_step_fails_without_retry_and_creates_nothing,
    a_decision_or_batchable_step_without_an_outcome_fails,
    too_many_batches_fail_the_batchable_step,
    a_retried_batch_worker_resumes_from_its_checkpoint,
    a_batch_worker_whose_process_died_resumes_from_its_checkpoint,
    a_stuck_step_is_dead_lettered_once_and_each_resolution_completes_its_task,
    a_declared_durable_event_is_stored_with_the_result,
    a_failure_event_fires_only_when_the_step_fails,
    a_broadcast_event_reaches_both_paths_with_one_id,
    a_lagging_fast_subscriber_never_fails_a_step,
    payloads_failing_their_schema_are_rejected_and_counted,
    durable_events_are_read_at_least_once_per_consumer,
    a_waiting_subscriber_wakes_when_events_commit,
    a_worker_without_the_template_reads_its_declarations_from_the_database,
    a_swept_timeout_fires_the_steps_failure_events,
);

fn config(url: &str) -> EngineConfig {
    EngineConfig {
        database_url: url.to_string(),
        poll_interval_ms: 20,
        lease_sweep_interval_ms: 3_600_000,
        shutdown_grace_ms: 5_000,
        ..Default::default()
    }
}

fn start(env: &Env, clock: SharedClock, handlers: HandlerRegistry, namespaces: &[&str]) -> Engine {
    start_cfg(env, clock, handlers, namespaces, config(&env.url))
}

fn start_cfg(
    env: &Env,
    clock: SharedClock,
    handlers: HandlerRegistry,
    namespaces: &[&str],
    cfg: EngineConfig,
) -> Engine {
    Engine::start_with(
        env.store.clone(),
        clock,
        cfg,
        handlers,
        TemplateRegistry::new(),
        namespaces.iter().map(|s| s.to_string()).collect(),
    )
}

fn example(name: &str) -> Arc<LoadedTemplate> {
    let path = format!("{}/../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    Arc::new(load_file(std::path::Path::new(&path), None).unwrap())
}

fn yaml(text: &str) -> Arc<LoadedTemplate> {
    Arc::new(parse_str(text, "<test>", None).unwrap())
}

async fn submit(engine: &Engine, t: &Arc<LoadedTemplate>, ctx: Value) -> Uuid {
    engine
        .submit(TaskSubmission::new(TemplateRef::Loaded(t.clone()), ctx))
        .await
        .unwrap()
        .task_uuid
}

async fn run_to_end(engine: &Engine, t: &Arc<LoadedTemplate>, ctx: Value) -> TaskView {
    let uuid = submit(engine, t, ctx).await;
    engine.wait_for_task(uuid, Duration::from_secs(20)).await.unwrap()
}

fn step<'a>(task: &'a TaskView, name: &str) -> &'a StepView {
    task.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Polls the store until `check` holds for the task (the engine works in the background).
async fn wait_for(store: &SharedStore, task: Uuid, what: &str, check: impl Fn(&TaskView) -> bool) -> TaskView {
    for _ in 0..1000 {
        let t = store.task_get(task).await.unwrap().unwrap();
        if check(&t) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A worker that claims one ready step of `namespace` at `T0`, with a lease of
/// `lease_ms`, and never answers.
async fn ghost_claim(env: &Env, namespace: &str, lease_ms: i64) -> Vec<tasker_core::store::ClaimedStep> {
    let claimed = env
        .store
        .step_claim_ready_many(StepClaimReadyManyParams {
            namespace: namespace.into(),
            limit: 1,
            now: T0,
            lease_ms,
            worker_id: "ghost".into(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the ghost claimed nothing in {namespace}");
    claimed
}

fn one_step(callable: &str, extra: &str) -> String {
    format!(
        "namespace: t\nname: one\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n  - name: only\n    handler: {{ callable: {callable} }}\n{extra}"
    )
}

async fn every_example_computes_its_documented_value(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let cases = [
        ("linear", json!({"n": 6}), "step_4", 2821109907456i64),
        ("diamond", json!({"n": 3}), "end", 43046721),
        ("tree", json!({"n": 2}), "converge", 1024),
        ("mixed_dag", json!({"n": 2}), "g", 82944),
        ("retry", json!({"n": 4}), "finish", 256),
    ];
    for (name, ctx, last, value) in cases {
        let task = run_to_end(&engine, &example(name), ctx).await;
        assert_eq!(task.state, TaskState::Complete, "{name}");
        assert_eq!(
            step(&task, last).result.as_ref().unwrap()["value"],
            json!(value),
            "{name}"
        );
        assert!(task.steps.iter().all(|s| s.state == StepState::Complete), "{name}");
    }
    let retry = engine.store().task_list(Default::default()).await.unwrap();
    assert_eq!(retry.len(), 5);
    engine.shutdown().await;
}

async fn retry_delays_follow_the_policy_on_the_clock(env: Env) {
    let clock = ManualClock::new(T0);
    let engine = start(&env, clock.clone(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(&one_step(
        "flaky_square",
        "    retry: { max_attempts: 3, backoff: exponential, base_ms: 1000, multiplier: 2, jitter: 0 }\n",
    ));
    let uuid = submit(&engine, &t, json!({"n": 5})).await;

    let first = wait_for(&env.store, uuid, "first failure", |t| {
        t.steps[0].state == StepState::WaitingForRetry
    })
    .await;
    assert_eq!((first.steps[0].attempts, first.steps[0].ready_at), (1, Some(T0 + 1000)));
    assert_eq!(first.steps[0].error.as_ref().unwrap()["error_type"], "flaky");
    assert_eq!(first.state, TaskState::WaitingForRetry);
    // Not claimable a millisecond early (the engine's own worker sees the same clock).
    let early = env
        .store
        .step_claim_ready_many(StepClaimReadyManyParams {
            namespace: "t".into(),
            limit: 10,
            now: T0 + 999,
            lease_ms: 1000,
            worker_id: "probe".into(),
        })
        .await
        .unwrap();
    assert!(early.is_empty());

    clock.set(T0 + 1000);
    let second = wait_for(&env.store, uuid, "second failure", |t| {
        t.steps[0].attempts == 2 && t.steps[0].state == StepState::WaitingForRetry
    })
    .await;
    assert_eq!(
        second.steps[0].ready_at,
        Some(T0 + 1000 + 2000),
        "the second delay doubles"
    );

    clock.set(T0 + 3000);
    let done = engine.wait_for_task(uuid, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(
        (done.steps[0].attempts, done.steps[0].result.clone()),
        (3, Some(json!({"value": 25})))
    );
    let events: Vec<String> = env
        .store
        .task_transitions(uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.event)
        .collect();
    assert!(
        events.windows(2).any(|w| w == ["retry_ready", "steps_enqueued"]),
        "{events:?}"
    );
    engine.shutdown().await;
}

async fn a_retry_after_hint_sets_the_delay(env: Env) {
    let clock = ManualClock::new(T0);
    let engine = start(&env, clock.clone(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(
        &one_step("fail_retryable", "    retry: { base_ms: 10, jitter: 0 }\n").replace(
            "callable: fail_retryable }",
            "callable: fail_retryable, initialization: { retry_after_ms: 5000 } }",
        ),
    );
    let uuid = submit(&engine, &t, json!({})).await;
    let task = wait_for(&env.store, uuid, "failure", |t| {
        t.steps[0].state == StepState::WaitingForRetry
    })
    .await;
    assert_eq!(task.steps[0].ready_at, Some(T0 + 5000));
    assert_eq!(task.steps[0].error.as_ref().unwrap()["retry_after_ms"], 5000);
    engine.shutdown().await;
}

async fn retryable_failures_stop_at_max_attempts(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(&one_step(
        "fail_retryable",
        "    retry: { max_attempts: 2, backoff: none }\n",
    ));
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    let s = &task.steps[0];
    assert_eq!((s.state, s.attempts), (StepState::Error, 2));
    assert_eq!(s.error.as_ref().unwrap()["attempts_exhausted"], true);
    engine.shutdown().await;
}

async fn a_permanent_failure_fails_the_task_at_once_and_leaves_children_pending(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(&format!(
        "{}  - name: after\n    dependencies: [only]\n    handler: {{ callable: noop }}\n",
        one_step("fail_permanently", "    retry: { max_attempts: 5 }\n")
    ));
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(
        (step(&task, "only").state, step(&task, "only").attempts),
        (StepState::Error, 1)
    );
    assert_eq!(step(&task, "only").error.as_ref().unwrap()["retryable"], false);
    assert_eq!(step(&task, "after").state, StepState::Pending);
    engine.shutdown().await;
}

async fn a_template_can_hold_failed_tasks_for_an_operator(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(&format!(
        "lifecycle: {{ hold_failed_tasks: true }}\n{}",
        one_step("fail_permanently", "")
    ));
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::BlockedByFailures);
    engine.shutdown().await;
}

async fn a_panicking_handler_becomes_a_failure_and_the_worker_keeps_working(env: Env) {
    let engine = start(
        &env,
        clock::system(),
        tasker_core::examples::registry(),
        &["t", "examples"],
    );
    let task = run_to_end(
        &engine,
        &yaml(&one_step("panic", "    retry: { max_attempts: 1 }\n")),
        json!({}),
    )
    .await;
    assert_eq!(task.state, TaskState::Error);
    let err = task.steps[0].error.clone().unwrap();
    assert_eq!(err["error_type"], "panic");
    assert!(
        err["message"].as_str().unwrap().contains("panicked on purpose"),
        "{err}"
    );
    assert_eq!(err["retryable"], true, "a panic is retryable by the failure table");
    let after = run_to_end(&engine, &example("linear"), json!({"n": 2})).await;
    assert_eq!(after.state, TaskState::Complete);
    engine.shutdown().await;
}

async fn a_handler_over_its_timeout_fails_as_a_timeout(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(
        &one_step("sleep", "    timeout_seconds: 1\n    retry: { max_attempts: 1 }\n")
            .replace("callable: sleep }", "callable: sleep, initialization: { ms: 10000 } }"),
    );
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(task.steps[0].error.as_ref().unwrap()["error_type"], "timeout");
    engine.shutdown().await;
}

async fn an_unknown_handler_fails_the_step_permanently(env: Env) {
    let engine = start(&env, clock::system(), HandlerRegistry::new(), &["t"]);
    let task = run_to_end(&engine, &yaml(&one_step("nobody_home", "")), json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    let s = &task.steps[0];
    assert_eq!(
        (s.attempts, s.error.as_ref().unwrap()["error_type"].as_str()),
        (1, Some("handler_not_found"))
    );
    engine.shutdown().await;
}

async fn many_concurrent_diamonds_each_finalize_exactly_once(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let diamond = example("diamond");
    let mut uuids = Vec::new();
    for i in 0..60 {
        uuids.push(submit(&engine, &diamond, json!({"n": i % 5})).await);
    }
    for uuid in uuids {
        let task = engine.wait_for_task(uuid, Duration::from_secs(30)).await.unwrap();
        assert_eq!(task.state, TaskState::Complete);
        let transitions = env.store.task_transitions(uuid).await.unwrap();
        assert_eq!(transitions.iter().filter(|t| t.to_state == "complete").count(), 1);
        assert_eq!(transitions.iter().filter(|t| t.most_recent).count(), 1);
    }
    engine.shutdown().await;
}

async fn the_worker_never_runs_more_handlers_than_its_concurrency(env: Env) {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut handlers = HandlerRegistry::new();
    let (r, p) = (running.clone(), peak.clone());
    handlers.register_fn("busy", move |_ctx| {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            StepResult::success(json!({}))
        }
    });
    let cfg = EngineConfig {
        concurrency: 3,
        ..config(&env.url)
    };
    let engine = start_cfg(&env, clock::system(), handlers, &["t"], cfg);
    let t = yaml(&one_step("busy", ""));
    let mut uuids = Vec::new();
    for _ in 0..12 {
        uuids.push(submit(&engine, &t, json!({})).await);
    }
    for u in uuids {
        assert_eq!(
            engine.wait_for_task(u, Duration::from_secs(20)).await.unwrap().state,
            TaskState::Complete
        );
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "ran {peak} handlers at once with concurrency 3");
    assert!(peak >= 2, "slots were not used in parallel (peak {peak})");
    engine.shutdown().await;
}

async fn a_lost_workers_step_returns_after_its_lease_without_burning_an_attempt(env: Env) {
    let clock = ManualClock::new(T0);
    // This engine's worker serves another namespace, so only the "ghost" below claims.
    let engine = start(&env, clock.clone(), tasker_core::examples::registry(), &["elsewhere"]);
    let uuid = submit(&engine, &example("linear"), json!({"n": 2})).await;
    let claimed = ghost_claim(&env, "examples", 1000).await;
    let step_uuid = claimed[0].step_uuid;

    clock.advance(999);
    assert_eq!(
        engine.enqueuer().sweep_expired_leases().await.unwrap().released,
        0,
        "the lease still holds"
    );
    clock.advance(2);
    let swept = engine.enqueuer().sweep_expired_leases().await.unwrap();
    assert_eq!((swept.released, swept.timed_out), (1, 0));
    let s = env.store.step_get(step_uuid).await.unwrap().unwrap();
    assert_eq!((s.state, s.attempts), (StepState::Enqueued, 0));
    let events: Vec<String> = env
        .store
        .step_transitions(step_uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.event)
        .collect();
    assert_eq!(events.last().unwrap(), "lease_expired");
    engine.shutdown().await;

    // A healthy worker picks it up and the task completes with one attempt per step.
    let env2 = Env {
        _guard: Box::new(()),
        store: store::open(&env.url).await.unwrap(),
        url: env.url.clone(),
    };
    let engine = start(&env2, clock.clone(), tasker_core::examples::registry(), &["examples"]);
    let task = engine.wait_for_task(uuid, Duration::from_secs(20)).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    assert!(task.steps.iter().all(|s| s.attempts == 1));
    engine.shutdown().await;
}

async fn a_claim_past_its_deadline_fails_as_a_timeout(env: Env) {
    let clock = ManualClock::new(T0);
    let engine = start(&env, clock.clone(), tasker_core::examples::registry(), &["elsewhere"]);
    let t = yaml(&one_step(
        "noop",
        "    timeout_seconds: 5\n    retry: { max_attempts: 1 }\n",
    ));
    let uuid = submit(&engine, &t, json!({})).await;
    ghost_claim(&env, "t", 60_000).await;
    clock.advance(5_001);
    let swept = engine.enqueuer().sweep_expired_leases().await.unwrap();
    assert_eq!((swept.released, swept.timed_out), (0, 1));
    let task = env.store.task_get(uuid).await.unwrap().unwrap();
    assert_eq!((task.state, task.steps[0].state), (TaskState::Error, StepState::Error));
    assert_eq!(task.steps[0].error.as_ref().unwrap()["error_type"], "timeout");
    engine.shutdown().await;
}

async fn shutdown_lets_running_handlers_finish_and_records_their_results(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let t = yaml(&one_step("sleep", "").replace("callable: sleep }", "callable: sleep, initialization: { ms: 300 } }"));
    let uuid = submit(&engine, &t, json!({})).await;
    wait_for(&env.store, uuid, "step running", |t| {
        t.steps[0].state == StepState::InProgress
    })
    .await;
    let report = engine.shutdown().await;
    assert_eq!(report.released, 0);
    let store = store::open(&env.url).await.unwrap();
    let task = store.task_get(uuid).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.steps[0].state),
        (TaskState::Complete, StepState::Complete)
    );
}

async fn shutdown_hands_back_steps_still_running_after_the_grace_period(env: Env) {
    let cfg = EngineConfig {
        shutdown_grace_ms: 100,
        ..config(&env.url)
    };
    let engine = start_cfg(&env, clock::system(), tasker_core::examples::registry(), &["t"], cfg);
    let t =
        yaml(&one_step("sleep", "").replace("callable: sleep }", "callable: sleep, initialization: { ms: 20000 } }"));
    let uuid = submit(&engine, &t, json!({})).await;
    wait_for(&env.store, uuid, "step running", |t| {
        t.steps[0].state == StepState::InProgress
    })
    .await;
    let report = engine.shutdown().await;
    assert_eq!(report.released, 1);
    let store = store::open(&env.url).await.unwrap();
    let s = &store.task_get(uuid).await.unwrap().unwrap().steps[0];
    assert_eq!(
        (s.state, s.attempts),
        (StepState::Enqueued, 0),
        "released without burning the attempt"
    );
}

async fn declared_domain_events_are_published_after_success(env: Env) {
    let t = yaml(&one_step(
        "square",
        "    publishes_events:\n      - { name: number.squared, condition: success, delivery_mode: fast }\n",
    ));
    let mut registry = TemplateRegistry::new();
    registry.insert(
        parse_str(
            &one_step(
                "square",
                "    publishes_events:\n      - { name: number.squared, condition: success, delivery_mode: fast }\n",
            ),
            "<test>",
            None,
        )
        .unwrap(),
    );
    let engine = Engine::start_with(
        env.store.clone(),
        clock::system(),
        config(&env.url),
        tasker_core::examples::registry(),
        registry,
        vec!["t".into()],
    );
    let mut events = engine.domain_events().subscribe();
    let task = run_to_end(&engine, &t, json!({"n": 7})).await;
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.name.as_str(), event.task_uuid, event.payload.clone()),
        ("number.squared", Some(task.task_uuid), json!({"value": 49}))
    );
    engine.shutdown().await;
}

async fn steps_with_their_own_namespace_run_in_the_engine_serving_it(env: Env) {
    // first (template namespace "shop") -> middle (routed to "shop.other") -> last ("shop").
    let text = "namespace: shop\nname: routed\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
        \x20 - { name: first, handler: { callable: tag } }\n\
        \x20 - name: middle\n    namespace: shop.other\n    dependencies: [first]\n    handler: { callable: tag }\n\
        \x20   publishes_events: [{ name: shop.tagged, delivery_mode: fast }]\n\
        \x20 - { name: last, dependencies: [middle], handler: { callable: tag } }\n";
    let t = yaml(text);
    // Each engine's `tag` records who ran the step and what namespace the handler saw.
    let tagger = |who: &'static str| {
        let mut r = HandlerRegistry::new();
        r.register_fn("tag", move |ctx| async move {
            let mut ran_by: Vec<Value> = ctx
                .dependency_results
                .values()
                .flat_map(|p| p["ran_by"].as_array().cloned().unwrap_or_default())
                .collect();
            ran_by.push(json!(who));
            StepResult::success(json!({ "ran_by": ran_by, "namespace": ctx.namespace }))
        });
        r
    };
    let mut templates = TemplateRegistry::new();
    templates.insert(parse_str(text, "<test>", None).unwrap());
    let main = start(&env, clock::system(), tagger("main"), &["shop"]);
    let other = Engine::start_with(
        env.store.clone(),
        clock::system(),
        config(&env.url),
        tagger("other"),
        templates,
        vec!["shop.other".into()],
    );
    let mut events = other.domain_events().subscribe();
    let task = run_to_end(&main, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Complete);
    assert_eq!(
        step(&task, "last").result,
        Some(json!({"ran_by": ["main", "other", "main"], "namespace": "shop"})),
        "the routed step ran in the other engine; every handler saw the template's namespace"
    );
    // The routed step's declared event is found through its template's namespace.
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            event.name.as_str(),
            event.step_name.as_deref(),
            event.namespace.as_deref()
        ),
        ("shop.tagged", Some("middle"), Some("shop"))
    );
    other.shutdown().await;
    main.shutdown().await;
}

async fn submissions_are_validated_and_deduplicated(env: Env) {
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let strict = yaml(&example("linear").template.clone().steps.iter().fold(String::from("namespace: examples\nname: strict\nversion: 1.0.0\ninput_schema: { type: object, required: [n], properties: { n: { type: integer } } }\nsteps:\n"), |acc, s| {
        let deps = if s.dependencies.is_empty() { String::new() } else { format!(", dependencies: [{}]", s.dependencies.join(", ")) };
        format!("{acc}  - {{ name: {}, handler: {{ callable: square }}{deps} }}\n", s.name)
    }));
    let bad = engine
        .submit(TaskSubmission::new(
            TemplateRef::Loaded(strict.clone()),
            json!({"n": "six"}),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, CreateTaskError::InvalidContext { errors, .. } if errors.iter().any(|e| e.contains("/n"))),
        "{bad}"
    );
    assert!(
        env.store.task_list(Default::default()).await.unwrap().is_empty(),
        "nothing written for a rejected submission"
    );

    let first = engine
        .submit(TaskSubmission::new(
            TemplateRef::Loaded(strict.clone()),
            json!({"n": 3}),
        ))
        .await
        .unwrap();
    let again = engine
        .submit(TaskSubmission::new(
            TemplateRef::Loaded(strict.clone()),
            json!({"n": 3}),
        ))
        .await
        .unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.task_uuid, again.task_uuid);
    let other = engine
        .submit(TaskSubmission::new(
            TemplateRef::Loaded(strict.clone()),
            json!({"n": 4}),
        ))
        .await
        .unwrap();
    assert!(other.created && other.task_uuid != first.task_uuid);

    let keyed =
        yaml("namespace: examples\nname: keyed\nversion: 1.0.0\nidentity_strategy: caller_provided\nsteps: []\n");
    let missing = engine
        .submit(TaskSubmission::new(TemplateRef::Loaded(keyed.clone()), json!({})))
        .await
        .unwrap_err();
    assert!(matches!(missing, CreateTaskError::IdempotencyKeyRequired { .. }));
    let mut with_key = TaskSubmission::new(TemplateRef::Loaded(keyed), json!({}));
    with_key.idempotency_key = Some("order-42".into());
    let a = engine.submit(with_key.clone()).await.unwrap();
    let b = engine.submit(with_key).await.unwrap();
    assert_eq!(
        (a.task_uuid, a.state, b.created),
        (b.task_uuid, TaskState::Complete, false),
        "no steps: complete at once"
    );
    engine.shutdown().await;
}

/// Another process waiting for a task hears when it settles (ADR 0011): on PostgreSQL
/// a store opened with LISTEN receives the uuid of every task that reaches a terminal
/// state, once, and nothing for a task still running; SQLite has no such channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_hears_when_a_task_settles_on_postgres() {
    let sqlite = sqlite_env().await;
    assert!(sqlite.store.task_settled_notifications().is_none());

    let env = postgres_env().await;
    let listener = store::open_with(&env.url, store::StoreOptions { listen: true })
        .await
        .unwrap();
    let mut settled = listener.task_settled_notifications().expect("PostgreSQL listens");
    // The LISTEN connection starts in the background: wait until the server shows it.
    let probe = sqlx::PgPool::connect(&env.url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&probe)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never started listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["examples"]);
    let task = run_to_end(&engine, &example("linear"), json!({"n": 3})).await;
    assert_eq!(task.state, TaskState::Complete);
    let heard = tokio::time::timeout(Duration::from_secs(10), settled.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    assert_eq!(heard, task.task_uuid);
    // One notification per settled task, not one per state change.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(settled.try_recv().is_err(), "a second notification for one task");
    engine.shutdown().await;
    listener.close().await;
    probe.close().await;
}
