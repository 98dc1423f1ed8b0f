//! Durable domain events: written in the result's transaction (and only with an
//! applied result), gated on the state the step reaches, polled at least once by
//! named consumers, acknowledged per consumer.

use super::*;
use tasker_core::contract::DomainEventMode;
use tasker_core::events::domain::{DomainEvent, StoredDomainEvent};
use tasker_core::store::{DomainEventPollParams, DomainEventPruneParams, EventGate, PendingDomainEvent};

/// A durable event about claimed step `c`.
fn event(c: &ClaimedStep, name: &str, payload: Value, mode: DomainEventMode) -> DomainEvent {
    DomainEvent {
        event_id: Uuid::now_v7(),
        name: name.into(),
        payload,
        mode,
        task_uuid: Some(c.task_uuid),
        step_uuid: Some(c.step_uuid),
        step_name: Some(c.name.clone()),
        namespace: Some(c.task_namespace.clone()),
        correlation_id: Some(c.correlation_id),
        fired_at: T0,
    }
}

fn with(mut completion: StepCompletion, events: Vec<(DomainEvent, EventGate)>) -> StepCompletion {
    completion.events = events
        .into_iter()
        .map(|(event, gate)| PendingDomainEvent { event, gate })
        .collect();
    completion
}

async fn poll(h: &Harness, consumer: &str, after: Option<i64>) -> Vec<StoredDomainEvent> {
    h.store
        .domain_event_poll(DomainEventPollParams {
            consumer: consumer.into(),
            after,
            limit: 100,
            name_pattern: None,
        })
        .await
        .expect("domain_event_poll")
}

fn names(events: &[StoredDomainEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.name.as_str()).collect()
}

pub async fn a_durable_event_is_written_with_the_result(h: Harness) {
    h.create_one(single(NS)).await;
    let c = h.claim(NS, 1).await.remove(0);
    let e = event(
        &c,
        "order.shipped",
        json!({"id": 7, "big": 9007199254740991_i64}),
        DomainEventMode::Durable,
    );
    let mut wakeups = h.store.domain_event_wakeups();
    wakeups.borrow_and_update();
    let report = h
        .complete(vec![with(
            success(&c, json!({"ok": true})),
            vec![(e.clone(), EventGate::Complete)],
        )])
        .await;
    assert_eq!(report.events_stored, 1);
    assert!(wakeups.has_changed().unwrap(), "a commit with events wakes subscribers");
    let stored = poll(&h, "reader", None).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].sequence > 0);
    assert_eq!(stored[0].event, e, "stored verbatim, identity and payload included");
}

pub async fn no_event_is_written_for_a_rejected_result(h: Harness) {
    h.create_one(single(NS)).await;
    let c = h.claim(NS, 1).await.remove(0);
    let mut stale = success(&c, json!({}));
    stale.claim_seq += 1;
    let e = event(&c, "order.shipped", json!({}), DomainEventMode::Durable);
    let report = h.complete(vec![with(stale, vec![(e, EventGate::Applied)])]).await;
    assert_eq!(report.rejected, [c.step_uuid]);
    assert_eq!(report.events_stored, 0);
    assert!(poll(&h, "reader", None).await.is_empty());
}

pub async fn a_result_whose_transaction_rolls_back_writes_no_event(h: Harness) {
    h.create_one(single(NS)).await;
    let c = h.claim(NS, 1).await.remove(0);
    let good = event(&c, "order.good", json!({}), DomainEventMode::Durable);
    // The table refuses a fast event (they never reach it): the insert fails inside
    // the result's transaction, and the whole transaction rolls back.
    let refused = event(&c, "order.refused", json!({}), DomainEventMode::Fast);
    let outcome = h
        .store
        .step_complete_many(StepCompleteManyParams {
            completions: vec![with(
                success(&c, json!({})),
                vec![(good, EventGate::Applied), (refused, EventGate::Applied)],
            )],
            now: h.now(),
            processor: "conformance".into(),
            eager: None,
        })
        .await;
    assert!(outcome.is_err(), "the insert must fail: {outcome:?}");
    assert_eq!(
        h.step_state(c.step_uuid).await,
        StepState::InProgress,
        "the result rolled back"
    );
    assert!(poll(&h, "reader", None).await.is_empty(), "and its events with it");
    // The store is usable afterwards, and the same result applies without the bad event.
    let again = h
        .complete(vec![with(
            success(&c, json!({})),
            vec![(
                event(&c, "order.good", json!({}), DomainEventMode::Durable),
                EventGate::Applied,
            )],
        )])
        .await;
    assert_eq!(again.events_stored, 1);
    assert_eq!(names(&poll(&h, "reader", None).await), ["order.good"]);
}

pub async fn gates_follow_the_state_the_step_reaches(h: Harness) {
    h.create_one(parallel(NS, 3)).await;
    let claimed = h.claim(NS, 3).await;
    let (a, b, c) = (&claimed[0], &claimed[1], &claimed[2]);
    let report = h
        .complete(vec![
            with(
                success(a, json!({})),
                vec![
                    (
                        event(a, "a.succeeded", json!({}), DomainEventMode::Durable),
                        EventGate::Complete,
                    ),
                    (
                        event(a, "a.failed", json!({}), DomainEventMode::Durable),
                        EventGate::Failed,
                    ),
                ],
            ),
            with(
                retry_at(b, h.now() + 1000),
                vec![
                    (
                        event(b, "b.succeeded", json!({}), DomainEventMode::Durable),
                        EventGate::Complete,
                    ),
                    (
                        event(b, "b.failed", json!({}), DomainEventMode::Broadcast),
                        EventGate::Failed,
                    ),
                ],
            ),
            with(
                fail(c),
                vec![(
                    event(c, "c.always", json!({}), DomainEventMode::Durable),
                    EventGate::Applied,
                )],
            ),
        ])
        .await;
    assert_eq!(report.events_stored, 3);
    let stored = poll(&h, "reader", None).await;
    assert_eq!(names(&stored), ["a.succeeded", "b.failed", "c.always"]);
    assert_eq!(stored[1].event.mode, DomainEventMode::Broadcast);
    assert!(stored.windows(2).all(|w| w[0].sequence < w[1].sequence));
}

pub async fn unacknowledged_events_are_delivered_again(h: Harness) {
    let first = h
        .store
        .domain_event_insert_many(vec![bare("x.one"), bare("x.two")], h.now())
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0] < first[1]);
    assert_eq!(names(&poll(&h, "reader", None).await), ["x.one", "x.two"]);
    assert_eq!(
        names(&poll(&h, "reader", None).await),
        ["x.one", "x.two"],
        "not acknowledged: delivered again"
    );
    assert_eq!(names(&poll(&h, "reader", Some(first[0])).await), ["x.two"]);
    assert_eq!(
        h.store.domain_event_ack("reader", first[0], h.now()).await.unwrap(),
        first[0]
    );
    assert_eq!(names(&poll(&h, "reader", None).await), ["x.two"]);
    assert_eq!(
        h.store.domain_event_ack("reader", first[1], h.now()).await.unwrap(),
        first[1]
    );
    assert!(poll(&h, "reader", None).await.is_empty());
}

pub async fn consumers_are_independent(h: Harness) {
    let seqs = h
        .store
        .domain_event_insert_many(vec![bare("x.one"), bare("x.two")], h.now())
        .await
        .unwrap();
    h.store.domain_event_ack("billing", seqs[1], h.now()).await.unwrap();
    assert!(poll(&h, "billing", None).await.is_empty());
    assert_eq!(names(&poll(&h, "audit", None).await), ["x.one", "x.two"]);
}

pub async fn an_acknowledgement_never_moves_back(h: Harness) {
    let seqs = h
        .store
        .domain_event_insert_many(vec![bare("x.one"), bare("x.two")], h.now())
        .await
        .unwrap();
    h.store.domain_event_ack("reader", seqs[1], h.now()).await.unwrap();
    assert_eq!(
        h.store.domain_event_ack("reader", seqs[0], h.now()).await.unwrap(),
        seqs[1]
    );
    assert!(poll(&h, "reader", None).await.is_empty());
}

pub async fn polls_filter_by_name_pattern_and_limit(h: Harness) {
    let events = vec![
        bare("order.placed"),
        bare("payment.failed"),
        bare("order.shipped"),
        bare("order_x.y"),
        bare("ORDER.LOUD"),
        bare("what?.[x]"),
    ];
    h.store.domain_event_insert_many(events, h.now()).await.unwrap();
    let read = |pattern: &str, limit| {
        h.store.domain_event_poll(DomainEventPollParams {
            consumer: "reader".into(),
            after: None,
            limit,
            name_pattern: Some(pattern.to_string()),
        })
    };
    assert_eq!(
        names(&read("order.*", 10).await.unwrap()),
        ["order.placed", "order.shipped"]
    );
    assert_eq!(names(&read("order.*", 1).await.unwrap()), ["order.placed"]);
    assert_eq!(names(&read("*.failed", 10).await.unwrap()), ["payment.failed"]);
    assert_eq!(
        read("order_x.y", 10).await.unwrap().len(),
        1,
        "`_` is a literal, not a wildcard"
    );
    assert_eq!(
        names(&read("ORDER.*", 10).await.unwrap()),
        ["ORDER.LOUD"],
        "names match case-sensitively"
    );
    assert_eq!(
        names(&read("what?.[x]", 10).await.unwrap()),
        ["what?.[x]"],
        "`?` and `[` are literals"
    );
    assert!(read("what.x", 10).await.unwrap().is_empty());
}

pub async fn an_event_id_is_stored_once(h: Harness) {
    let e = bare("x.once");
    h.store
        .domain_event_insert_many(vec![e.clone()], h.now())
        .await
        .unwrap();
    let again = h.store.domain_event_insert_many(vec![e], h.now()).await.unwrap();
    assert!(again.is_empty());
    assert_eq!(poll(&h, "reader", None).await.len(), 1);
}

pub async fn prune_deletes_old_events_every_consumer_has_acknowledged(h: Harness) {
    let old = h
        .store
        .domain_event_insert_many(vec![bare("p.one"), bare("p.two"), bare("p.three")], h.now())
        .await
        .unwrap();
    let newer = h
        .store
        .domain_event_insert_many(vec![bare("p.newer")], h.now() + 10)
        .await
        .unwrap();
    let prune = |acknowledged_only: bool, limit: u32| DomainEventPruneParams {
        stored_before: h.now() + 5,
        acknowledged_only,
        limit,
    };
    assert_eq!(
        h.store.domain_event_prune(prune(true, 100)).await.unwrap(),
        0,
        "no consumer is known, so nothing is acknowledged yet"
    );
    h.store.domain_event_ack("a", old[1], h.now()).await.unwrap();
    h.store.domain_event_ack("b", old[0], h.now()).await.unwrap();
    assert_eq!(
        h.store.domain_event_prune(prune(true, 100)).await.unwrap(),
        1,
        "only the event both consumers acknowledged goes"
    );
    assert_eq!(names(&poll(&h, "reader", None).await), ["p.two", "p.three", "p.newer"]);
    h.store.domain_event_ack("b", newer[0], h.now()).await.unwrap();
    h.store.domain_event_ack("a", newer[0], h.now()).await.unwrap();
    assert_eq!(
        h.store.domain_event_prune(prune(true, 1)).await.unwrap(),
        1,
        "the limit holds"
    );
    assert_eq!(h.store.domain_event_prune(prune(false, 100)).await.unwrap(), 1);
    assert_eq!(h.store.domain_event_prune(prune(false, 100)).await.unwrap(), 0);
    assert_eq!(
        names(&poll(&h, "reader", None).await),
        ["p.newer"],
        "events stored after the cut stay, acknowledged or not"
    );
    let next = h
        .store
        .domain_event_insert_many(vec![bare("p.next")], h.now() + 20)
        .await
        .unwrap();
    assert!(next[0] > newer[0], "sequences are not reused after a prune");
    assert_eq!(names(&poll(&h, "b", None).await), ["p.next"], "offsets stay valid");
}

/// An event about no step.
fn bare(name: &str) -> DomainEvent {
    DomainEvent {
        event_id: Uuid::now_v7(),
        name: name.into(),
        payload: json!([1, "two", {"three": 3.5}]),
        mode: DomainEventMode::Durable,
        task_uuid: None,
        step_uuid: None,
        step_name: None,
        namespace: None,
        correlation_id: None,
        fired_at: T0,
    }
}
