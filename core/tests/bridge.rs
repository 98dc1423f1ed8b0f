//! The bridge end to end, on both backends: a test plays the host language,
//! polling step events and completing them the way a binding does.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tasker_core::bridge::{Bridge, BridgeError};
use tasker_core::contract::{StepEvent, TaskRequest};
use tasker_core::state::{StepState, TaskState};
use tasker_core::store::TaskView;

mod support;

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bridge_templates");

/// A database for one test on either backend; `_guard` keeps it alive.
struct Env {
    _guard: Box<dyn std::any::Any + Send>,
    url: String,
}

async fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bridge.db", dir.path().display());
    Env {
        _guard: Box::new(dir),
        url,
    }
}

async fn postgres_env() -> Env {
    let db = support::pg::test_database().await;
    let url = db.url.clone();
    Env {
        _guard: Box::new(db),
        url,
    }
}

per_backend!(
    host_handlers_run_a_task_to_completion,
    rust_and_host_handlers_share_one_task,
    a_broken_result_is_recorded_as_invalid_result,
    results_for_unknown_events_are_rejected_and_change_nothing,
    claims_never_exceed_concurrency,
    a_released_step_comes_back_without_counting_an_attempt,
    a_step_past_its_deadline_fails_as_timeout_and_is_retried,
    extend_lease_moves_the_deadline_within_its_bound,
    a_retried_attempt_carries_the_last_checkpoint,
    shutdown_drains_then_closes,
    client_errors_have_codes,
    domain_events_carry_the_step_identity,
);

async fn open(env: &Env, concurrency: usize, extra: Value) -> Bridge {
    let mut options = json!({
        "database_url": env.url,
        "namespaces": ["host"],
        "concurrency": concurrency,
        "templates": [TEMPLATES],
        "poll_interval_ms": 50,
    });
    if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Bridge::open_json(&options.to_string()).await.expect("bridge opens")
}

async fn create(bridge: &Bridge, name: &str, context: Value) -> TaskView {
    let request = TaskRequest {
        namespace: "host".into(),
        name: name.into(),
        version: None,
        context,
        idempotency_key: None,
        correlation_id: None,
    };
    bridge.create_task(request).await.expect("task created")
}

async fn poll(bridge: &Bridge, max: usize) -> Vec<StepEvent> {
    bridge
        .poll_step_events(max, Duration::from_secs(5))
        .await
        .expect("poll")
}

/// The host's `square`: the parent's value squared, or the context's `n`.
fn square(event: &StepEvent) -> Value {
    let n = match event.dependency_results.values().next() {
        Some(parent) => parent["value"].as_i64().unwrap(),
        None => event.context["n"].as_i64().unwrap(),
    };
    json!({"event_id": event.event_id, "success": true, "result": {"value": n * n}})
}

fn step<'a>(task: &'a TaskView, name: &str) -> &'a tasker_core::store::StepView {
    task.steps.iter().find(|s| s.name == name).expect("step exists")
}

async fn host_handlers_run_a_task_to_completion(env: Env) {
    let bridge = open(&env, 4, json!({})).await;
    let task = create(&bridge, "linear", json!({"n": 3})).await;
    let first = poll(&bridge, 8).await;
    assert_eq!(first.len(), 1);
    let e = &first[0];
    assert_eq!((e.step_name.as_str(), e.attempt, e.max_attempts), ("first", 1, 3));
    assert_eq!(e.handler.callable, "host.square");
    assert_eq!(e.handler.initialization, json!({"factor": 1}));
    assert_eq!(e.context, json!({"n": 3}));
    assert!(e.deadline_ms > 0 && e.timeout_ms == 30_000);
    let report = bridge.complete_step_events(vec![square(e)]).await.unwrap();
    assert_eq!(
        (report.accepted, report.invalid.len(), report.rejected.len()),
        (1, 0, 0)
    );
    let second = poll(&bridge, 8).await;
    assert_eq!(second[0].step_name, "second");
    assert_eq!(second[0].dependency_results["first"], json!({"value": 9}));
    bridge.complete_step_events(vec![square(&second[0])]).await.unwrap();
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Complete);
    assert_eq!(step(&done, "second").result, Some(json!({"value": 81})));
    bridge.shutdown(Duration::from_secs(1)).await.unwrap();
}

async fn rust_and_host_handlers_share_one_task(env: Env) {
    let bridge = open(&env, 4, json!({"builtin_handlers": true})).await;
    let task = create(&bridge, "mixed", json!({"n": 5})).await;
    // `square` ran in Rust; only the host step is handed out.
    let events = poll(&bridge, 8).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].step_name, "host_square");
    assert_eq!(events[0].dependency_results["rust_square"], json!({"value": 25}));
    bridge.complete_step_events(vec![square(&events[0])]).await.unwrap();
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(step(&done, "host_square").result, Some(json!({"value": 625})));
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn a_broken_result_is_recorded_as_invalid_result(env: Env) {
    let bridge = open(&env, 4, json!({})).await;
    let task = create(&bridge, "linear", json!({"n": 3})).await;
    let e = poll(&bridge, 1).await.remove(0);
    // A misspelt key: decoded strictly, so the step fails instead of losing the result.
    let broken = json!({"event_id": e.event_id, "success": true, "resutl": {"value": 9}});
    let report = bridge.complete_step_events(vec![broken]).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.invalid.len(), 1);
    assert!(
        report.invalid[0].message.contains("resutl"),
        "{}",
        report.invalid[0].message
    );
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Error);
    let first = step(&done, "first");
    assert_eq!(first.state, StepState::Error);
    assert_eq!(first.attempts, 1, "invalid_result is not retried");
    assert_eq!(first.error.as_ref().unwrap()["error_type"], "invalid_result");
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn results_for_unknown_events_are_rejected_and_change_nothing(env: Env) {
    let bridge = open(&env, 4, json!({})).await;
    let task = create(&bridge, "linear", json!({"n": 3})).await;
    let e = poll(&bridge, 1).await.remove(0);
    let stranger = json!({"event_id": uuid::Uuid::now_v7(), "success": true, "result": 1});
    let no_id = json!({"success": true});
    let report = bridge.complete_step_events(vec![stranger, no_id]).await.unwrap();
    assert_eq!((report.accepted, report.rejected.len()), (0, 2));
    assert!(report.rejected[1].event_id.is_none());
    // A second answer for the same event is rejected too.
    bridge.complete_step_events(vec![square(&e)]).await.unwrap();
    let again = bridge.complete_step_events(vec![square(&e)]).await.unwrap();
    assert_eq!(again.rejected.len(), 1);
    let view = bridge.get_task(task.task_uuid).await.unwrap();
    assert_eq!(step(&view, "first").attempts, 1);
    assert!(matches!(
        bridge.complete_step_events_json("{\"not\": \"an array\"}").await,
        Err(BridgeError::InvalidInput(_))
    ));
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn claims_never_exceed_concurrency(env: Env) {
    let bridge = open(&env, 2, json!({})).await;
    let task = create(&bridge, "fanout", json!({})).await;
    let first = poll(&bridge, 10).await;
    // Wait a little for any over-claim to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = bridge.poll_step_events(10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(first.len() + more.len(), 2, "at most `concurrency` steps are held");
    let status = bridge.worker_status();
    assert_eq!(status.outstanding, 2);
    assert!(status.worker.in_flight <= 2);
    // Completing frees slots; the rest arrive.
    let mut held: Vec<StepEvent> = first.into_iter().chain(more).collect();
    let mut finished = 0;
    while finished < 5 {
        let results = held
            .drain(..)
            .map(|e| json!({"event_id": e.event_id, "success": true, "result": null}));
        let results: Vec<Value> = results.collect();
        finished += results.len();
        bridge.complete_step_events(results).await.unwrap();
        if finished < 5 {
            held = poll(&bridge, 10).await;
            assert!(held.len() <= 2);
        }
    }
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Complete);
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn a_released_step_comes_back_without_counting_an_attempt(env: Env) {
    let bridge = open(&env, 1, json!({})).await;
    let task = create(&bridge, "linear", json!({"n": 2})).await;
    let e = poll(&bridge, 1).await.remove(0);
    assert!(bridge.release_step_event(e.event_id).await.unwrap());
    assert!(
        !bridge.release_step_event(e.event_id).await.unwrap(),
        "a second release finds nothing"
    );
    let again = poll(&bridge, 1).await.remove(0);
    assert_eq!((again.step_uuid, again.attempt), (e.step_uuid, 1));
    assert_ne!(again.event_id, e.event_id);
    let transitions = bridge.engine().store().step_transitions(e.step_uuid).await.unwrap();
    assert!(transitions.iter().any(|t| t.event == "release"), "{transitions:?}");
    bridge.complete_step_events(vec![square(&again)]).await.unwrap();
    let view = bridge.get_task(task.task_uuid).await.unwrap();
    assert_eq!(step(&view, "first").attempts, 1);
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn a_step_past_its_deadline_fails_as_timeout_and_is_retried(env: Env) {
    let bridge = open(&env, 1, json!({})).await;
    let task = create(&bridge, "slow", json!({})).await;
    let e = poll(&bridge, 1).await.remove(0);
    assert_eq!(e.timeout_ms, 1000);
    // Never answered: the deadline passes, the step fails as `timeout`, and is retried.
    let retry = poll(&bridge, 1).await.remove(0);
    assert_eq!((retry.step_uuid, retry.attempt), (e.step_uuid, 2));
    let view = bridge.get_task(task.task_uuid).await.unwrap();
    let error = step(&view, "only").error.clone().expect("the first attempt's error");
    assert_eq!(
        (error["error_type"].clone(), error["retryable"].clone()),
        (json!("timeout"), json!(true))
    );
    let late = bridge.complete_step_events(vec![square_of_null(&e)]).await.unwrap();
    assert_eq!(late.rejected.len(), 1, "a result after the deadline is rejected");
    bridge.complete_step_events(vec![square_of_null(&retry)]).await.unwrap();
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Complete);
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

fn square_of_null(e: &StepEvent) -> Value {
    json!({"event_id": e.event_id, "success": true, "result": {"done": true}})
}

async fn extend_lease_moves_the_deadline_within_its_bound(env: Env) {
    let bridge = open(&env, 1, json!({"max_lease_extension_ms": 1500})).await;
    create(&bridge, "slow", json!({})).await;
    let e = poll(&bridge, 1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let moved = bridge.extend_lease(e.event_id).await.unwrap();
    assert!(moved > e.deadline_ms, "the deadline moved later");
    let claimed_at = e.deadline_ms - e.timeout_ms;
    assert!(moved <= claimed_at + 1500, "never beyond the bound");
    // Past the original deadline, the step is still held.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let report = bridge.complete_step_events(vec![square_of_null(&e)]).await.unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    assert!(matches!(
        bridge.extend_lease(uuid::Uuid::now_v7()).await,
        Err(BridgeError::UnknownEvent(_))
    ));
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn a_retried_attempt_carries_the_last_checkpoint(env: Env) {
    let bridge = open(&env, 1, json!({})).await;
    let task = create(&bridge, "linear", json!({"n": 2})).await;
    let e = poll(&bridge, 1).await.remove(0);
    assert_eq!(e.checkpoint, None);
    bridge
        .checkpoint_step(e.event_id, json!(300), json!({"rows": 300}))
        .await
        .unwrap();
    let fail = json!({"event_id": e.event_id, "success": false,
        "error": {"message": "crashed mid-batch", "error_type": "IOError", "retryable": true}});
    bridge.complete_step_events(vec![fail]).await.unwrap();
    let retry = poll(&bridge, 1).await.remove(0);
    assert_eq!(retry.attempt, 2);
    let checkpoint = retry.checkpoint.clone().expect("checkpoint carried");
    assert_eq!(
        (checkpoint["cursor"].clone(), checkpoint["data"].clone()),
        (json!(300), json!({"rows": 300}))
    );
    assert!(checkpoint["saved_at_ms"].as_i64().unwrap() > 0);
    bridge.complete_step_events(vec![square(&retry)]).await.unwrap();
    let second = poll(&bridge, 1).await.remove(0);
    bridge.complete_step_events(vec![square(&second)]).await.unwrap();
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Complete);
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn shutdown_drains_then_closes(env: Env) {
    let bridge = std::sync::Arc::new(open(&env, 4, json!({})).await);
    let task = create(&bridge, "fanout", json!({})).await;
    let held = poll(&bridge, 1).await;
    assert_eq!(held.len(), 1);
    // The host finishes its running handler during the grace period.
    let finisher = {
        let bridge = bridge.clone();
        let id = held[0].event_id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            bridge
                .complete_step_events(vec![json!({"event_id": id, "success": true, "result": null})])
                .await
        })
    };
    let started = Instant::now();
    let report = bridge.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait out the whole grace"
    );
    assert_eq!(finisher.await.unwrap().unwrap().accepted, 1);
    assert!(report.released >= 1, "claimed-but-not-polled steps go back: {report:?}");
    assert!(matches!(
        bridge.poll_step_events(1, Duration::from_millis(10)).await,
        Err(BridgeError::WorkerClosed)
    ));
    assert_eq!(
        bridge.shutdown(Duration::ZERO).await.unwrap(),
        Default::default(),
        "idempotent"
    );
    // A new bridge sees the finished step complete and the released ones enqueued.
    let again = open(&env, 8, json!({})).await;
    let view = again.get_task(task.task_uuid).await.unwrap();
    let complete = view.steps.iter().filter(|s| s.state == StepState::Complete).count();
    assert_eq!(complete, 1, "{:?}", view.steps);
    assert!(view.steps.iter().all(|s| s.attempts <= 1));
    again.shutdown(Duration::ZERO).await.unwrap();
}

async fn client_errors_have_codes(env: Env) {
    let bridge = open(&env, 1, json!({})).await;
    let unknown = bridge
        .create_task_json(r#"{"namespace": "host", "name": "nope"}"#)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "template_not_found");
    let typo = bridge
        .create_task_json(r#"{"namespace": "host", "name": "linear", "contxt": {}}"#)
        .await
        .unwrap_err();
    assert_eq!(typo.code(), "invalid_input");
    assert!(typo.to_string().contains("contxt"));
    let missing = bridge
        .get_task_json(&uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "task_not_found");
    assert_eq!(bridge.get_task_json("nope").await.unwrap_err().code(), "invalid_input");
    let task = create(&bridge, "linear", json!({"n": 2})).await;
    let waited = bridge
        .wait_for_task(task.task_uuid, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(waited.code(), "wait_timed_out");
    let bad = Bridge::open_json(r#"{"database_url": "sqlite://x.db", "colour": 1}"#)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "invalid_config");
    let client = Bridge::open_json(&json!({"database_url": env.url}).to_string())
        .await
        .unwrap();
    // A client without templates finds them in the database.
    let via_client = client
        .create_task(TaskRequest {
            namespace: "host".into(),
            name: "linear".into(),
            version: Some("1.0.0".into()),
            context: json!({"n": 1}),
            idempotency_key: None,
            correlation_id: None,
        })
        .await
        .unwrap();
    assert_eq!(via_client.name, "linear");
    assert_eq!(
        client.poll_step_events(1, Duration::ZERO).await.unwrap_err().code(),
        "invalid_input"
    );
    client.shutdown(Duration::ZERO).await.unwrap();
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

async fn domain_events_carry_the_step_identity(env: Env) {
    let bridge = open(&env, 1, json!({})).await;
    let mut bus = bridge.engine().domain_events().subscribe();
    let reader = bridge.engine().event_subscriber("reader");
    let task = create(&bridge, "events", json!({})).await;
    let e = poll(&bridge, 1).await.remove(0);
    let id = e.event_id.to_string();
    let published = bridge
        .publish_domain_event_json("order.shipped", r#"{"id": 7}"#, "broadcast", Some(&id))
        .await
        .unwrap();
    let published: Value = serde_json::from_str(&published).unwrap();
    assert_eq!(published["step_uuid"], json!(e.step_uuid));
    // It rides with the step's result: nothing is stored or published yet.
    assert!(reader.poll(10, Duration::ZERO).await.unwrap().is_empty());
    assert!(bus.try_recv().is_err());
    // A payload failing the schema the step declares is refused now, and counted.
    let bad = bridge
        .publish_domain_event_json("order.shipped", r#"{"id": "seven"}"#, "durable", Some(&id))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "invalid_input");
    assert!(bad.to_string().contains("fails the declared schema"), "{bad}");
    let rejected =
        bridge
            .engine()
            .metrics()
            .domain_events_rejected
            .with_label_values(&["host", "order.shipped", "explicit"]);
    assert_eq!(rejected.get(), 1);
    bridge
        .complete_step_events(vec![
            json!({"event_id": id, "success": true, "result": {"shipped": true}}),
        ])
        .await
        .unwrap();
    let done = bridge
        .wait_for_task(task.task_uuid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, tasker_core::state::TaskState::Complete);
    let stored = reader.poll(10, Duration::from_secs(5)).await.unwrap();
    let names: Vec<&str> = stored.iter().map(|s| s.event.name.as_str()).collect();
    assert_eq!(names, ["order.noted", "order.shipped"], "declared, then explicit");
    assert_eq!(json!(stored[1].event.event_id), published["event_id"]);
    let fast = bus.recv().await.unwrap();
    assert_eq!(
        (fast.name.as_str(), fast.payload.clone()),
        ("order.shipped", json!({"id": 7}))
    );
    // Without a step, a durable event is stored before the call returns.
    bridge
        .publish_domain_event_json("audit.ping", "[1, 2]", "durable", None)
        .await
        .unwrap();
    let bare = reader.poll(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        (bare.len(), bare[0].event.payload.clone(), bare[0].event.step_uuid),
        (1, json!([1, 2]), None)
    );
    let bad = bridge
        .publish_domain_event_json("x", "{}", "sometimes", None)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "invalid_input");
    // The bindings' subscriber: JSON out, name patterns, acknowledgements.
    let sub = bridge.event_subscriber("json", Some("order.*")).unwrap();
    let polled: Vec<Value> = serde_json::from_str(&sub.poll_json(10, 0).await.unwrap()).unwrap();
    let names: Vec<&str> = polled.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["order.noted", "order.shipped"]);
    let last = polled[1]["sequence"].as_i64().unwrap();
    assert_eq!(sub.ack(last).await.unwrap(), last);
    sub.rewind().await;
    assert_eq!(
        sub.poll_json(10, 0).await.unwrap(),
        "[]",
        "acknowledged: nothing to redeliver"
    );
    assert_eq!(bridge.event_subscriber(" ", None).unwrap_err().code(), "invalid_input");
    bridge.shutdown(Duration::ZERO).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_bridge_hands_out_synthetic_events_without_a_database() {
    let bridge = Bridge::open_loopback(4).await.unwrap();
    for _ in 0..3 {
        let events = poll(&bridge, 64).await;
        assert!(!events.is_empty() && events.len() <= 4, "{}", events.len());
        let results: Vec<Value> = events
            .iter()
            .map(|e| json!({"event_id": e.event_id, "success": true, "result": {"value": 1}}))
            .collect();
        let report = bridge.complete_step_events(results).await.unwrap();
        assert_eq!(report.accepted as usize, events.len());
    }
    let report = bridge.shutdown(Duration::from_millis(100)).await.unwrap();
    assert_eq!(report.drained, 0);
    assert!(matches!(
        bridge.poll_step_events(1, Duration::ZERO).await,
        Err(BridgeError::WorkerClosed)
    ));
}
