//! The dead-letter queue through the whole engine: a worker that claims steps and
//! never answers; two engines' staleness sweeps, run at once, record each stuck task
//! once; each of the three resolutions lets its task complete through the engine's
//! worker. Part of the engine suite (`engine.rs`), run on SQLite and on PostgreSQL.

use super::*;
use tasker_core::clock::Clock;
use tasker_core::store::{
    DlqAction, DlqListParams, DlqReason, DlqResolveOutcome, DlqResolveParams, DlqStatus, StepCompletion, StepOutcome,
};

/// `fetch` runs in a namespace only the ghost below claims from; `use` runs in the
/// engine and answers with what `fetch` gave it.
const CHAIN: &str = "namespace: t\nname: dlq_chain\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
    \x20 - { name: fetch, namespace: ghost, handler: { callable: fetch } }\n\
    \x20 - { name: use, dependencies: [fetch], handler: { callable: use } }\n";

fn use_handler() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.register_fn("use", |ctx| async move {
        StepResult::success(json!({ "used": ctx.dependency("fetch").cloned() }))
    });
    r
}

async fn resolve(engine: &Engine, entry_id: Uuid, action: DlqAction) -> DlqResolveOutcome {
    let outcome = engine
        .store()
        .dlq_resolve(DlqResolveParams {
            entry_id,
            action,
            note: None,
            actor: "test".into(),
            now: engine.clock().now_ms(),
            processor: "test".into(),
            events: vec![],
        })
        .await
        .unwrap();
    engine.staleness().resolved(&outcome).await;
    outcome
}

fn metric(engine: &Engine, line_start: &str) -> Option<String> {
    engine
        .metrics()
        .render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
}

pub(super) async fn a_stuck_step_is_dead_lettered_once_and_each_resolution_completes_its_task(env: Env) {
    let clock = ManualClock::new(T0);
    let mut cfg = config(&env.url);
    cfg.staleness.step_lease_grace_ms = 1_000;
    cfg.staleness.interval_ms = 3_600_000;
    let engine = start_cfg(&env, clock.clone(), use_handler(), &["t"], cfg.clone());
    // A second process sweeping the same database (an orchestrator with no worker).
    let other = start_cfg(&env, clock.clone(), HandlerRegistry::new(), &["nothing"], cfg);
    let t = yaml(CHAIN);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(submit(&engine, &t, json!({})).await);
    }
    // The ghost claims every `fetch` and never answers.
    let claimed = env
        .store
        .step_claim_ready_many(StepClaimReadyManyParams {
            namespace: "ghost".into(),
            limit: 10,
            now: T0,
            lease_ms: 1_000,
            worker_id: "ghost".into(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    clock.advance(1_999);
    assert!(
        engine.staleness().sweep_once().await.unwrap().recorded.is_empty(),
        "within the grace period"
    );
    clock.advance(1);
    let (a, b) = tokio::join!(engine.staleness().sweep_once(), other.staleness().sweep_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut recorded: Vec<Uuid> = a.recorded.iter().chain(&b.recorded).map(|e| e.task_uuid).collect();
    recorded.sort();
    let mut expected = tasks.clone();
    expected.sort();
    assert_eq!(recorded, expected, "two sweeps at once record each stuck task once");
    let entries = env
        .store
        .dlq_list(DlqListParams {
            status: Some(DlqStatus::Open),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.reason == DlqReason::StepLeaseLost));
    for task in &tasks {
        let view = env.store.task_get(*task).await.unwrap().unwrap();
        assert_eq!(view.state, TaskState::BlockedByFailures);
        assert_eq!(step(&view, "fetch").state, StepState::Error);
        assert_eq!(step(&view, "use").state, StepState::Pending);
    }
    engine.staleness().refresh_open_gauge().await.unwrap();
    assert_eq!(metric(&engine, "tasker_dlq_open_entries").as_deref(), Some("3"));
    let created: u64 = [&engine, &other]
        .iter()
        .filter_map(|e| metric(e, "tasker_dlq_entries_created_total{reason=\"step_lease_lost\"}"))
        .map(|v| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(created, 3);

    let entry_of = |task: Uuid| entries.iter().find(|e| e.task_uuid == task).unwrap().clone();
    let fetch_of = |task: Uuid| claimed.iter().find(|c| c.task_uuid == task).unwrap().clone();

    // 1. Retry: the ghost claims the step again (attempts start over) and this time answers.
    let (task, entry, fetch) = (tasks[0], entry_of(tasks[0]), fetch_of(tasks[0]));
    let outcome = resolve(
        &engine,
        entry.entry_id,
        DlqAction::RetryStep {
            step_uuid: fetch.step_uuid,
        },
    )
    .await;
    assert!(
        matches!(
            outcome,
            DlqResolveOutcome::Resolved {
                step_state: StepState::Enqueued,
                ..
            }
        ),
        "{outcome:?}"
    );
    let again = env
        .store
        .step_claim_ready_many(StepClaimReadyManyParams {
            namespace: "ghost".into(),
            limit: 10,
            now: clock.now_ms(),
            lease_ms: 60_000,
            worker_id: "ghost".into(),
        })
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].step_uuid, again[0].attempt), (fetch.step_uuid, 1));
    env.store
        .step_complete(
            StepCompletion {
                step_uuid: fetch.step_uuid,
                claim_seq: again[0].claim_seq,
                outcome: StepOutcome::Complete {
                    result: json!("retried"),
                },
                metadata: json!({}),
                events: vec![],
            },
            clock.now_ms(),
            "ghost".into(),
        )
        .await
        .unwrap();
    let done = engine.wait_for_task(task, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(step(&done, "use").result, Some(json!({"used": "retried"})));

    // 2. Resolve by hand: `use` runs without a result from `fetch`.
    let (task, entry, fetch) = (tasks[1], entry_of(tasks[1]), fetch_of(tasks[1]));
    let outcome = resolve(
        &engine,
        entry.entry_id,
        DlqAction::ResolveStep {
            step_uuid: fetch.step_uuid,
        },
    )
    .await;
    assert!(matches!(outcome, DlqResolveOutcome::Resolved { .. }), "{outcome:?}");
    let done = engine.wait_for_task(task, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(step(&done, "fetch").state, StepState::ResolvedManually);
    assert_eq!(step(&done, "use").result, Some(json!({"used": null})));

    // 3. Complete with a supplied result: `use` receives it.
    let (task, entry, fetch) = (tasks[2], entry_of(tasks[2]), fetch_of(tasks[2]));
    let supplied = json!({"rows": 42});
    let outcome = resolve(
        &engine,
        entry.entry_id,
        DlqAction::CompleteStep {
            step_uuid: fetch.step_uuid,
            result: supplied.clone(),
        },
    )
    .await;
    assert!(matches!(outcome, DlqResolveOutcome::Resolved { .. }), "{outcome:?}");
    let done = engine.wait_for_task(task, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(step(&done, "use").result, Some(json!({ "used": supplied })));

    // The ghost's late answer changes nothing, and a second resolution is refused.
    let late = env
        .store
        .step_complete(
            StepCompletion {
                step_uuid: fetch.step_uuid,
                claim_seq: fetch.claim_seq,
                outcome: StepOutcome::Complete { result: json!("late") },
                metadata: json!({}),
                events: vec![],
            },
            clock.now_ms(),
            "ghost".into(),
        )
        .await
        .unwrap();
    assert_eq!(late.rejected, vec![fetch.step_uuid]);
    let twice = resolve(
        &engine,
        entry.entry_id,
        DlqAction::ResolveStep {
            step_uuid: fetch.step_uuid,
        },
    )
    .await;
    assert!(matches!(twice, DlqResolveOutcome::AlreadyResolved { .. }), "{twice:?}");
    assert_eq!(metric(&engine, "tasker_dlq_open_entries").as_deref(), Some("0"));
    other.shutdown().await;
    engine.shutdown().await;
}
