//! The audit trail: every state change of a task or step leaves a gapless chain of
//! transition rows whose newest row matches the entity's state.

use super::*;
use tasker_core::store::{ReleaseReason, StepReleaseManyParams};

pub async fn every_entity_ends_with_one_most_recent_row_matching_its_state(h: Harness) {
    // A mix of everything: success, retry, release, lease expiry, failure, a held task.
    let ok = diamond(NS);
    let retried = linear(NS);
    let failing = parallel(NS, 3);
    let mut held = linear(NS);
    held.hold_failed = true;
    let empty = new_task(NS, "empty", &[]);
    let all = [
        ok.clone(),
        retried.clone(),
        failing.clone(),
        held.clone(),
        empty.clone(),
    ];
    h.create(all.to_vec()).await;

    for round in 0..6 {
        h.clock.advance(1_000);
        let claimed = h.claim(NS, 100).await;
        let mut results = Vec::new();
        let mut released = Vec::new();
        for c in &claimed {
            let in_task = |t: &NewTask| c.task_uuid == t.task_uuid;
            if in_task(&retried) && c.name == "a" && c.attempt < 3 {
                results.push(retry_at(c, h.now() + 500));
            } else if (in_task(&failing) && c.name == "p0") || (in_task(&held) && c.name == "b") {
                results.push(fail(c));
            } else if in_task(&ok) && c.name == "b" && round < 3 && c.claim_seq < 3 {
                released.push((c.step_uuid, c.claim_seq));
            } else {
                results.push(success(c, json!({"round": round, "step": c.name})));
            }
        }
        if !released.is_empty() {
            let reason = if round % 2 == 0 {
                ReleaseReason::Released
            } else {
                ReleaseReason::LeaseExpired
            };
            h.store
                .step_release_many(StepReleaseManyParams {
                    claims: released,
                    reason,
                    now: h.now(),
                    processor: "sweeper".into(),
                })
                .await
                .unwrap();
        }
        h.complete(results).await;
        for t in &all {
            assert_audit_consistent(&h.store, t.task_uuid).await;
        }
    }
    assert_eq!(h.task_state(ok.task_uuid).await, TaskState::Complete);
    assert_eq!(h.task_state(retried.task_uuid).await, TaskState::Complete);
    assert_eq!(h.task_state(failing.task_uuid).await, TaskState::Error);
    assert_eq!(h.task_state(held.task_uuid).await, TaskState::BlockedByFailures);
    assert_eq!(h.task_state(empty.task_uuid).await, TaskState::Complete);
    assert_eq!(h.step(step_uuid(&retried, "a")).await.attempts, 3);
    for t in &all {
        let rows = h.store.task_transitions(t.task_uuid).await.unwrap();
        assert_eq!(rows.iter().filter(|r| r.most_recent).count(), 1);
        for s in &t.steps {
            let rows = h.store.step_transitions(s.step_uuid).await.unwrap();
            assert_eq!(rows.iter().filter(|r| r.most_recent).count(), 1, "step {}", s.name);
            assert_eq!(rows.last().unwrap().to_state, h.step_state(s.step_uuid).await.as_str());
        }
    }
}

pub async fn a_creation_audit_records_each_hop(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    assert_eq!(
        h.task_path(task.task_uuid).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "initializing", "start"),
            hop(Some("initializing"), "enqueuing_steps", "ready_steps_found"),
            hop(Some("enqueuing_steps"), "steps_in_process", "steps_enqueued"),
        ]
    );
    assert_eq!(
        h.step_path(step_uuid(&task, "a")).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "enqueued", "enqueue")
        ]
    );
    assert_eq!(
        h.step_path(step_uuid(&task, "b")).await,
        [hop(None, "pending", "create")]
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_retry_cycle_leaves_a_gapless_audit(h: Harness) {
    let task = single(NS);
    let step = task.steps[0].step_uuid;
    h.create_one(task.clone()).await;
    for attempt in 1..=3u32 {
        let c = h.claim(NS, 1).await.remove(0);
        assert_eq!(c.attempt, attempt);
        if attempt < 3 {
            h.complete(vec![retry_at(&c, h.now() + 100)]).await;
            assert_eq!(h.task_state(task.task_uuid).await, TaskState::WaitingForRetry);
            h.clock.advance(100);
        } else {
            h.complete(vec![fail(&c)]).await;
        }
        assert_audit_consistent(&h.store, task.task_uuid).await;
    }
    let retry_cycle = [
        hop(Some("enqueued"), "in_progress", "start"),
        hop(Some("in_progress"), "enqueued_as_error_for_orchestration", "fail"),
        hop(
            Some("enqueued_as_error_for_orchestration"),
            "waiting_for_retry",
            "wait_for_retry",
        ),
        hop(Some("waiting_for_retry"), "pending", "retry"),
        hop(Some("pending"), "enqueued", "enqueue"),
    ];
    let mut want = vec![
        hop(None, "pending", "create"),
        hop(Some("pending"), "enqueued", "enqueue"),
    ];
    want.extend(retry_cycle.iter().cloned());
    want.extend(retry_cycle.iter().cloned());
    want.push(hop(Some("enqueued"), "in_progress", "start"));
    want.push(hop(Some("in_progress"), "enqueued_as_error_for_orchestration", "fail"));
    want.push(hop(Some("enqueued_as_error_for_orchestration"), "error", "give_up"));
    assert_eq!(h.step_path(step).await, want);

    let task_cycle = [
        hop(Some("steps_in_process"), "evaluating_results", "results_received"),
        hop(Some("evaluating_results"), "waiting_for_retry", "awaiting_retry"),
        hop(Some("waiting_for_retry"), "enqueuing_steps", "retry_ready"),
        hop(Some("enqueuing_steps"), "steps_in_process", "steps_enqueued"),
    ];
    let mut want = vec![
        hop(None, "pending", "create"),
        hop(Some("pending"), "initializing", "start"),
        hop(Some("initializing"), "enqueuing_steps", "ready_steps_found"),
        hop(Some("enqueuing_steps"), "steps_in_process", "steps_enqueued"),
    ];
    want.extend(task_cycle.iter().cloned());
    want.extend(task_cycle.iter().cloned());
    want.push(hop(Some("steps_in_process"), "evaluating_results", "results_received"));
    want.push(hop(
        Some("evaluating_results"),
        "blocked_by_failures",
        "permanent_failure",
    ));
    want.push(hop(Some("blocked_by_failures"), "error", "give_up"));
    assert_eq!(h.task_path(task.task_uuid).await, want);
}

pub async fn audit_rows_carry_time_and_processor(h: Harness) {
    let task = single(NS);
    let step = task.steps[0].step_uuid;
    h.create_one(task.clone()).await;
    h.clock.advance(1_000);
    let c = h.claim_as(NS, 1, "worker-7").await.remove(0);
    h.clock.advance(1_000);
    let mut done = success(&c, json!("ok"));
    done.metadata = json!({"worker_id": "worker-7", "execution_ms": 12});
    h.complete(vec![done]).await;

    let rows = h.store.step_transitions(step).await.unwrap();
    let times: Vec<i64> = rows.iter().map(|r| r.created_at).collect();
    assert_eq!(times, [T0, T0, T0 + 1_000, T0 + 2_000, T0 + 2_000]);
    let procs: Vec<Option<&str>> = rows.iter().map(|r| r.processor.as_deref()).collect();
    assert_eq!(
        procs,
        [
            Some("conformance"),
            Some("conformance"),
            Some("worker-7"),
            Some("conformance"),
            Some("conformance")
        ]
    );
    assert_eq!(
        rows[2].metadata.as_ref().and_then(|m| m.get("worker_id")),
        Some(&json!("worker-7"))
    );
    assert_eq!(
        rows[4].metadata,
        Some(json!({"worker_id": "worker-7", "execution_ms": 12}))
    );

    let rows = h.store.task_transitions(task.task_uuid).await.unwrap();
    assert!(rows[..4]
        .iter()
        .all(|r| r.created_at == T0 && r.processor.as_deref() == Some("conformance")));
    assert!(rows[4..].iter().all(|r| r.created_at == T0 + 2_000), "{rows:#?}");
    assert_eq!(rows.last().unwrap().to_state, "complete");
    assert_audit_consistent(&h.store, task.task_uuid).await;
}
