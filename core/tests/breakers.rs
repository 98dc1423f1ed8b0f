//! The `ffi_completion` circuit breaker inside an engine: while it is open the worker
//! claims nothing (results could not be written), and once its open period has
//! passed on the engine's clock the work goes on and the breaker closes again.
//! (The `database` breaker is exercised through the API, `tests/api.rs`, and against a
//! stopped PostgreSQL server, `tests/reliability.rs`.)

use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tasker_core::breaker::BreakerState;
use tasker_core::clock::ManualClock;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::TaskSubmission;
use tasker_core::state::{StepState, TaskState};
use tasker_core::store;
use tasker_core::template::{load_file, TemplateRegistry};

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_ffi_completion_breaker_pauses_claims_until_its_period_ends() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/breakers.db", dir.path().display());
    let store = store::open(&url).await.unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = EngineConfig {
        database_url: url,
        poll_interval_ms: 10,
        lease_sweep_interval_ms: 3_600_000,
        ..Default::default()
    };
    cfg.breakers.ffi_completion.open_ms = 60_000;
    cfg.backpressure.sample_interval_ms = 200;
    let engine = Engine::start_with(
        store.clone(),
        clock.clone(),
        cfg,
        tasker_core::examples::registry(),
        TemplateRegistry::new(),
        vec!["examples".into()],
    );
    let breaker = &engine.breakers().ffi_completion;
    for _ in 0..breaker.config().failure_threshold {
        breaker.record_failure();
    }
    assert_eq!(breaker.state(), BreakerState::Open);

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/linear.yaml");
    let linear = Arc::new(load_file(&path, None).unwrap());
    let created = engine
        .submit(TaskSubmission::new(TemplateRef::Loaded(linear), json!({"n": 2})))
        .await
        .unwrap();
    // The sampler counts the root step as ready a sampling interval later: an idle
    // worker that were not paused would have claimed it at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.admission().ready_steps("examples") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sampler never counted the ready step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = store.task_get(created.task_uuid).await.unwrap().unwrap();
    assert_eq!(
        task.steps[0].state,
        StepState::Enqueued,
        "nothing is claimed while the breaker is open"
    );
    assert_eq!(engine.worker_status().claimed, 0);

    // The open period passes on the engine's clock: claims resume, the writes succeed
    // and close the breaker.
    clock.advance(60_000);
    let done = engine
        .wait_for_task(created.task_uuid, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(engine.breakers().ffi_completion.state(), BreakerState::Closed);
    let metrics = engine.metrics().render();
    assert!(
        metrics.contains("tasker_breaker_transitions_total{breaker=\"ffi_completion\",to=\"closed\"} 1"),
        "{metrics}"
    );
    engine.shutdown().await;
}
