//! Domain events through the whole engine: declared events in each mode and
//! condition, explicit publishes from a Rust handler, schema rejections (counted),
//! a lagging in-process subscriber, and durable events read at least once by
//! named subscribers on another store handle. Part of the engine suite
//! (`engine.rs`), each case run on SQLite and on PostgreSQL.

use super::*;
use tasker_core::contract::DomainEventMode;
use tasker_core::events::domain::{StoredDomainEvent, DOMAIN_EVENT_CAPACITY};
use tasker_core::events::subscriber::EventSubscriber;
use tokio::sync::broadcast::error::TryRecvError;

/// A one-step template `t/one@1.0.0` run by `callable` and declaring `events`
/// (YAML flow mappings), with an engine serving it.
fn with_events(env: &Env, callable: &str, events: &[&str], handlers: HandlerRegistry) -> (Engine, Arc<LoadedTemplate>) {
    let mut extra = String::new();
    if !events.is_empty() {
        extra.push_str("    publishes_events:\n");
    }
    for e in events {
        extra.push_str(&format!("      - {e}\n"));
    }
    let text = one_step(callable, &extra);
    let mut registry = TemplateRegistry::new();
    registry.insert(parse_str(&text, "<test>", None).unwrap());
    let engine = Engine::start_with(
        env.store.clone(),
        clock::system(),
        config(&env.url),
        handlers,
        registry,
        vec!["t".into()],
    );
    (engine, yaml(&text))
}

/// A subscriber on a store of its own (as another process would have).
async fn subscriber(env: &Env, consumer: &str) -> EventSubscriber {
    let store = store::open(&env.url).await.unwrap();
    EventSubscriber::new(store, clock::system(), consumer).with_poll_interval(Duration::from_millis(20))
}

/// Every event stored now, for `consumer` (without waiting).
async fn drain(s: &EventSubscriber) -> Vec<StoredDomainEvent> {
    s.poll(1000, Duration::ZERO).await.unwrap()
}

fn names(events: &[StoredDomainEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.name.as_str()).collect()
}

fn rejected(engine: &Engine, event: &str, source: &str) -> u64 {
    engine
        .metrics()
        .domain_events_rejected
        .with_label_values(&["t", event, source])
        .get()
}

pub(super) async fn a_declared_durable_event_is_stored_with_the_result(env: Env) {
    let (engine, t) = with_events(
        &env,
        "square",
        &[
            "{ name: number.squared, condition: success }",
            "{ name: number.failed, condition: failure }",
            "{ name: number.done, condition: always, delivery_mode: durable }",
        ],
        tasker_core::examples::registry(),
    );
    let mut bus = engine.domain_events().subscribe();
    let reader = subscriber(&env, "reader").await;
    // Waits in Rust until the result's commit wakes it (or the fallback poll).
    let waiting = tokio::spawn(async move {
        let first = reader.poll(10, Duration::from_secs(20)).await.unwrap();
        (reader, first)
    });
    let task = run_to_end(&engine, &t, json!({"n": 7})).await;
    assert_eq!(task.state, TaskState::Complete);
    let (reader, mut got) = waiting.await.unwrap();
    got.extend(drain(&reader).await);
    assert_eq!(
        names(&got),
        ["number.squared", "number.done"],
        "the failure event did not fire"
    );
    let e = &got[0].event;
    assert_eq!(
        (
            e.mode,
            e.task_uuid,
            e.step_name.as_deref(),
            e.namespace.as_deref(),
            e.payload.clone()
        ),
        (
            DomainEventMode::Durable,
            Some(task.task_uuid),
            Some("only"),
            Some("t"),
            json!({"value": 49})
        )
    );
    assert_eq!(
        bus.try_recv().unwrap_err(),
        TryRecvError::Empty,
        "durable events stay off the bus"
    );
    engine.shutdown().await;
}

pub(super) async fn a_failure_event_fires_only_when_the_step_fails(env: Env) {
    let mut handlers = HandlerRegistry::new();
    handlers.register_fn("refuse", |_ctx| async move {
        StepResult::permanent_failure("no", "Refused")
    });
    let (engine, t) = with_events(
        &env,
        "refuse",
        &[
            "{ name: order.accepted, condition: success }",
            "{ name: order.refused, condition: failure }",
            "{ name: order.seen, condition: always }",
        ],
        handlers,
    );
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Error);
    let reader = subscriber(&env, "reader").await;
    assert_eq!(names(&drain(&reader).await), ["order.refused", "order.seen"]);
    engine.shutdown().await;
}

pub(super) async fn a_broadcast_event_reaches_both_paths_with_one_id(env: Env) {
    let (engine, t) = with_events(
        &env,
        "square",
        &["{ name: number.squared, delivery_mode: broadcast }"],
        tasker_core::examples::registry(),
    );
    let mut bus = engine.domain_events().subscribe();
    run_to_end(&engine, &t, json!({"n": 3})).await;
    let fast = tokio::time::timeout(Duration::from_secs(5), bus.recv())
        .await
        .unwrap()
        .unwrap();
    let stored = drain(&subscriber(&env, "reader").await).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, fast, "the same event on both paths");
    assert_eq!(fast.mode, DomainEventMode::Broadcast);
    engine.shutdown().await;
}

pub(super) async fn a_lagging_fast_subscriber_never_fails_a_step(env: Env) {
    let burst = DOMAIN_EVENT_CAPACITY + 100;
    let mut handlers = HandlerRegistry::new();
    handlers.register_fn("chatty", move |ctx| async move {
        let mut result = StepResult::success(json!({"sent": burst}));
        for i in 0..burst {
            result = result.publish(&ctx, "chat.line", json!({"i": i}), DomainEventMode::Fast);
        }
        result.publish(&ctx, "chat.summary", json!({"lines": burst}), DomainEventMode::Durable)
    });
    let (engine, t) = with_events(&env, "chatty", &[], handlers);
    let mut never_reads = engine.domain_events().subscribe();
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    // Fast events go out after the result's commit, so the waiter can see the task
    // complete just before they are sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match never_reads.try_recv() {
            Err(TryRecvError::Lagged(_)) => break,
            Err(TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            other => panic!("the subscriber should have fallen behind and missed events, not held the step: {other:?}"),
        }
    }
    assert_eq!(names(&drain(&subscriber(&env, "reader").await).await), ["chat.summary"]);
    engine.shutdown().await;
}

pub(super) async fn payloads_failing_their_schema_are_rejected_and_counted(env: Env) {
    let mut handlers = HandlerRegistry::new();
    handlers.register_fn("square", |ctx| async move {
        StepResult::success(json!({"value": 49}))
            .publish(
                &ctx,
                "number.checked",
                json!({"value": "seven"}),
                DomainEventMode::Durable,
            )
            .publish(&ctx, "number.checked", json!({"value": 7}), DomainEventMode::Durable)
    });
    let schema = "schema: { type: object, required: [value], properties: { value: { type: integer } } }";
    let (engine, t) = with_events(
        &env,
        "square",
        &[
            "{ name: number.squared, schema: { type: object, properties: { value: { type: string } } } }",
            "{ name: number.plain }",
            &format!("{{ name: number.checked, condition: failure, {schema} }}"),
        ],
        handlers,
    );
    let task = run_to_end(&engine, &t, json!({})).await;
    assert_eq!(task.state, TaskState::Complete, "a rejected event never fails its step");
    assert_eq!(
        step(&task, "only").result,
        Some(json!({"value": 49})),
        "the result is recorded"
    );
    let stored = drain(&subscriber(&env, "reader").await).await;
    assert_eq!(names(&stored), ["number.plain", "number.checked"]);
    assert_eq!(stored[1].event.payload, json!({"value": 7}));
    assert_eq!(rejected(&engine, "number.squared", "declared"), 1);
    assert_eq!(rejected(&engine, "number.checked", "explicit"), 1);
    let text = engine.metrics().render();
    assert!(
        text.contains(
            r#"tasker_domain_events_rejected_total{event="number.squared",namespace="t",source="declared"} 1"#
        ),
        "{text}"
    );
    engine.shutdown().await;
}

pub(super) async fn durable_events_are_read_at_least_once_per_consumer(env: Env) {
    let (engine, t) = with_events(
        &env,
        "square",
        &["{ name: number.squared }"],
        tasker_core::examples::registry(),
    );
    for n in 1..=3 {
        run_to_end(&engine, &t, json!({"n": n})).await;
    }
    let first = subscriber(&env, "billing").await;
    let got = first.poll(2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].event.payload, json!({"value": 1}));
    assert_eq!(first.ack(got[0].sequence).await.unwrap(), got[0].sequence);
    let rest = drain(&first).await;
    assert_eq!(rest.len(), 1, "the session moves on without acks");
    assert_eq!(rest[0].event.payload, json!({"value": 9}));
    drop(first);
    // A new subscriber of the same consumer gets what was not acknowledged.
    let again = subscriber(&env, "billing").await;
    let redelivered = drain(&again).await;
    assert_eq!(
        redelivered.iter().map(|e| e.event.payload.clone()).collect::<Vec<_>>(),
        [json!({"value": 4}), json!({"value": 9})]
    );
    again.ack(redelivered[1].sequence).await.unwrap();
    assert!(drain(&subscriber(&env, "billing").await).await.is_empty());
    // Another consumer is independent.
    assert_eq!(drain(&subscriber(&env, "audit").await).await.len(), 3);
    engine.shutdown().await;
}

pub(super) async fn a_waiting_subscriber_wakes_when_events_commit(env: Env) {
    // Polling alone would take an hour: only a wake-up can end these waits in time.
    let hour = Duration::from_secs(3600);
    let wait = |store: SharedStore, consumer: &'static str| {
        tokio::spawn(async move {
            let s = EventSubscriber::new(store, clock::system(), consumer).with_poll_interval(hour);
            s.poll(10, Duration::from_secs(30)).await.unwrap()
        })
    };
    // In this process: the store's own signal after the commit.
    let here = wait(env.store.clone(), "here");
    // Another store handle (as another process would have): PostgreSQL's NOTIFY.
    let elsewhere = match env.store.backend() {
        store::Backend::Postgres => Some(wait(store::open(&env.url).await.unwrap(), "elsewhere")),
        store::Backend::Sqlite => None,
    };
    // Let both subscribers reach their wait (nothing is stored yet, so they must wait).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event = tasker_core::events::domain::DomainEvent {
        event_id: Uuid::now_v7(),
        name: "wake.up".into(),
        payload: json!({}),
        mode: DomainEventMode::Durable,
        task_uuid: None,
        step_uuid: None,
        step_name: None,
        namespace: None,
        correlation_id: None,
        fired_at: T0,
    };
    env.store.domain_event_insert_many(vec![event], T0).await.unwrap();
    assert_eq!(names(&here.await.unwrap()), ["wake.up"]);
    if let Some(elsewhere) = elsewhere {
        assert_eq!(names(&elsewhere.await.unwrap()), ["wake.up"]);
    }
}

/// A `tasker worker` loads no template folder: the declarations of the steps it runs
/// come from the template registered in the database with the task.
pub(super) async fn a_worker_without_the_template_reads_its_declarations_from_the_database(env: Env) {
    let t = yaml(&one_step(
        "square",
        "    publishes_events:\n      - { name: number.squared, condition: success }\n",
    ));
    let engine = start(&env, clock::system(), tasker_core::examples::registry(), &["t"]);
    let reader = subscriber(&env, "reader").await;
    let task = run_to_end(&engine, &t, json!({"n": 3})).await;
    assert_eq!(task.state, TaskState::Complete);
    let got = drain(&reader).await;
    assert_eq!(names(&got), ["number.squared"]);
    assert_eq!(got[0].event.payload, json!({"value": 9}));
    engine.shutdown().await;
}

/// A claim whose worker vanished past the attempt's deadline fails as a timeout in
/// the lease sweep, which fires the step's failure events as the worker would have.
pub(super) async fn a_swept_timeout_fires_the_steps_failure_events(env: Env) {
    let clock = ManualClock::new(T0);
    let t = yaml(&one_step(
        "noop",
        "    timeout_seconds: 5\n    retry: { max_attempts: 1 }\n    publishes_events:\n\
         \x20     - { name: step.failed, condition: failure }\n\
         \x20     - { name: step.done, condition: success }\n\
         \x20     - { name: step.ended, condition: always, delivery_mode: broadcast }\n",
    ));
    // This engine's worker serves another namespace and it loaded no template.
    let engine = start(&env, clock.clone(), tasker_core::examples::registry(), &["elsewhere"]);
    let mut bus = engine.domain_events().subscribe();
    let uuid = submit(&engine, &t, json!({})).await;
    ghost_claim(&env, "t", 60_000).await;
    clock.advance(5_001);
    let swept = engine.enqueuer().sweep_expired_leases().await.unwrap();
    assert_eq!((swept.released, swept.timed_out), (0, 1));
    let reader = subscriber(&env, "reader").await;
    let got = drain(&reader).await;
    assert_eq!(
        names(&got),
        ["step.failed", "step.ended"],
        "the success event did not fire"
    );
    assert_eq!(got[0].event.task_uuid, Some(uuid));
    assert_eq!(got[0].event.step_name.as_deref(), Some("only"));
    let fast = bus.try_recv().expect("the broadcast event's fast half");
    assert_eq!(got[1].event, fast, "the same event on both paths");
    engine.shutdown().await;
}
