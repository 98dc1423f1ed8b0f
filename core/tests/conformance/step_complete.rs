//! `step_complete_many`: step transitions, successors, task evaluation and finalization.

use super::*;
use std::collections::HashMap;
use tasker_core::store::{AppliedStep, Backend, EnqueuedStep};

pub async fn success_completes_the_step_through_orchestration(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    h.clock.advance(250);
    let report = h.complete(vec![success(&a, json!({"value": 7}))]).await;
    assert_eq!(
        report.applied,
        [AppliedStep {
            step_uuid: a.step_uuid,
            task_uuid: task.task_uuid,
            state: StepState::Complete
        }]
    );
    assert!(report.rejected.is_empty());
    assert_eq!(
        report.enqueued,
        [EnqueuedStep {
            step_uuid: step_uuid(&task, "b"),
            task_uuid: task.task_uuid,
            namespace: NS.into()
        }]
    );
    let view = h.step(a.step_uuid).await;
    assert_eq!(view.state, StepState::Complete);
    assert_eq!(view.result, Some(json!({"value": 7})));
    assert_eq!(view.error, None);
    assert_eq!(view.completed_at, Some(h.now()));
    assert_eq!(view.attempts, 1);
    let path = h.step_path(a.step_uuid).await;
    assert_eq!(
        path[path.len() - 2..],
        [
            hop(Some("in_progress"), "enqueued_for_orchestration", "succeed"),
            hop(Some("enqueued_for_orchestration"), "complete", "complete"),
        ]
    );
    assert_eq!(h.step_state(step_uuid(&task, "b")).await, StepState::Enqueued);
    assert_eq!(h.step_state(step_uuid(&task, "c")).await, StepState::Pending);
    // The task went round through enqueuing_steps for the new step.
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    let tpath = h.task_path(task.task_uuid).await;
    assert_eq!(
        tpath[tpath.len() - 3..],
        [
            hop(Some("steps_in_process"), "evaluating_results", "results_received"),
            hop(Some("evaluating_results"), "enqueuing_steps", "ready_steps_found"),
            hop(Some("enqueuing_steps"), "steps_in_process", "steps_enqueued"),
        ]
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_child_is_enqueued_only_when_all_its_parents_completed(h: Harness) {
    let task = diamond(NS);
    let d = step_uuid(&task, "d");
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 10).await.remove(0);
    let report = h.complete(vec![success(&a, json!("a"))]).await;
    let mut enq: Vec<Uuid> = report.enqueued.iter().map(|e| e.step_uuid).collect();
    enq.sort();
    let mut want = vec![step_uuid(&task, "b"), step_uuid(&task, "c")];
    want.sort();
    assert_eq!(enq, want);

    let mid = h.claim(NS, 10).await;
    assert_eq!(mid.len(), 2);
    let report = h.complete(vec![success(named(&mid, "b"), json!("b"))]).await;
    assert!(report.enqueued.is_empty(), "d must wait for c: {report:?}");
    assert_eq!(h.step_state(d).await, StepState::Pending);
    assert!(h.claim(NS, 10).await.is_empty());

    let report = h.complete(vec![success(named(&mid, "c"), json!("c"))]).await;
    assert_eq!(
        report.enqueued,
        [EnqueuedStep {
            step_uuid: d,
            task_uuid: task.task_uuid,
            namespace: NS.into()
        }]
    );
    assert_eq!(h.step_state(d).await, StepState::Enqueued);
    assert_eq!(
        h.step_path(d).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "enqueued", "enqueue")
        ],
        "one enqueue, no audit row for the first parent's completion"
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn parents_completed_in_one_batch_enqueue_their_join_once(h: Harness) {
    let task = diamond(NS);
    let d = step_uuid(&task, "d");
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 10).await.remove(0);
    h.complete(vec![success(&a, json!("a"))]).await;
    let mid = h.claim(NS, 10).await;
    let report = h
        .complete(mid.iter().map(|c| success(c, json!(c.name))).collect())
        .await;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        report.enqueued,
        [EnqueuedStep {
            step_uuid: d,
            task_uuid: task.task_uuid,
            namespace: NS.into()
        }]
    );
    let join = h.claim(NS, 10).await;
    assert_eq!(join.len(), 1);
    assert_eq!(join[0].step_uuid, d);
    assert_eq!(join[0].dependency_results.get("b"), Some(&json!("b")));
    assert_eq!(join[0].dependency_results.get("c"), Some(&json!("c")));
    assert_eq!(h.step_path(d).await.len(), 3, "created, enqueued once, started");
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn retry_at_moves_the_step_to_waiting_for_retry(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    let ready_at = h.now() + 3_000;
    let report = h.complete(vec![retry_at(&c, ready_at)]).await;
    assert_eq!(
        report.applied,
        [AppliedStep {
            step_uuid: c.step_uuid,
            task_uuid: task.task_uuid,
            state: StepState::WaitingForRetry
        }]
    );
    assert!(report.enqueued.is_empty());
    let view = h.step(c.step_uuid).await;
    assert_eq!(view.state, StepState::WaitingForRetry);
    assert_eq!(view.error, Some(json!({"message": "try again", "attempt": 1})));
    assert_eq!(view.result, None);
    assert_eq!(view.completed_at, None);
    assert_eq!(view.attempts, 1);
    let path = h.step_path(c.step_uuid).await;
    assert_eq!(
        path[path.len() - 2..],
        [
            hop(Some("in_progress"), "enqueued_as_error_for_orchestration", "fail"),
            hop(
                Some("enqueued_as_error_for_orchestration"),
                "waiting_for_retry",
                "wait_for_retry"
            ),
        ]
    );
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::WaitingForRetry);
    let tpath = h.task_path(task.task_uuid).await;
    assert_eq!(
        tpath[tpath.len() - 2..],
        [
            hop(Some("steps_in_process"), "evaluating_results", "results_received"),
            hop(Some("evaluating_results"), "waiting_for_retry", "awaiting_retry"),
        ]
    );
    // The delay is the ready_at given: claimable at it, not before.
    h.clock.set(ready_at - 1);
    assert!(h.claim(NS, 1).await.is_empty());
    h.clock.set(ready_at);
    assert_eq!(h.claim(NS, 1).await.len(), 1);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn fail_moves_the_step_to_error(h: Harness) {
    let task = parallel(NS, 2);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let p0 = named(&claimed, "p0");
    let report = h.complete(vec![fail(p0)]).await;
    assert_eq!(
        report.applied,
        [AppliedStep {
            step_uuid: p0.step_uuid,
            task_uuid: task.task_uuid,
            state: StepState::Error
        }]
    );
    let view = h.step(p0.step_uuid).await;
    assert_eq!(view.state, StepState::Error);
    assert_eq!(view.error, Some(json!({"message": "boom", "type": "PermanentError"})));
    assert_eq!(view.completed_at, None);
    let path = h.step_path(p0.step_uuid).await;
    assert_eq!(
        path[path.len() - 2..],
        [
            hop(Some("in_progress"), "enqueued_as_error_for_orchestration", "fail"),
            hop(Some("enqueued_as_error_for_orchestration"), "error", "give_up"),
        ]
    );
    h.clock.advance(3_600_000);
    assert!(h.claim(NS, 10).await.is_empty(), "a failed step is never claimed again");
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_result_for_a_stale_claim_is_rejected(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    let audit_before = h.store.step_transitions(c.step_uuid).await.unwrap();
    let task_audit_before = h.store.task_transitions(task.task_uuid).await.unwrap();
    for wrong in [c.claim_seq - 1, c.claim_seq + 1] {
        let mut stale = success(&c, json!("stale"));
        stale.claim_seq = wrong;
        let report = h.complete(vec![stale]).await;
        assert!(report.applied.is_empty(), "{report:?}");
        assert_eq!(report.rejected, [c.step_uuid]);
        assert!(report.enqueued.is_empty() && report.tasks.is_empty());
    }
    let view = h.step(c.step_uuid).await;
    assert_eq!(view.state, StepState::InProgress);
    assert_eq!(view.result, None);
    assert_eq!(h.store.step_transitions(c.step_uuid).await.unwrap(), audit_before);
    assert_eq!(
        h.store.task_transitions(task.task_uuid).await.unwrap(),
        task_audit_before
    );
    // The current claim still holds the step.
    let report = h.complete(vec![success(&c, json!("fresh"))]).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(h.step(c.step_uuid).await.result, Some(json!("fresh")));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_result_for_a_step_not_in_progress_is_rejected(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    h.complete(vec![success(&a, json!("first"))]).await;
    let audit_before = h.store.step_transitions(a.step_uuid).await.unwrap();

    // A second result for a completed step (a redelivery, a different verdict).
    let report = h.complete(vec![success(&a, json!("second")), fail(&a)]).await;
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.rejected, [a.step_uuid, a.step_uuid]);
    let view = h.step(a.step_uuid).await;
    assert_eq!(view.state, StepState::Complete);
    assert_eq!(view.result, Some(json!("first")));
    assert_eq!(view.error, None);
    assert_eq!(h.store.step_transitions(a.step_uuid).await.unwrap(), audit_before);

    // A result for an enqueued step nobody claimed, and for a step that does not exist.
    let b = step_uuid(&task, "b");
    let unknown = Uuid::now_v7();
    let forged = |step_uuid| StepCompletion {
        step_uuid,
        claim_seq: 0,
        outcome: StepOutcome::Complete {
            result: json!("forged"),
        },
        metadata: json!({}),
        events: vec![],
    };
    let report = h.complete(vec![forged(b), forged(unknown)]).await;
    assert!(report.applied.is_empty());
    assert_eq!(report.rejected, [b, unknown]);
    assert_eq!(h.step_state(b).await, StepState::Enqueued);
    assert_eq!(h.step(b).await.result, None);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_duplicate_result_in_one_batch_is_applied_once(h: Harness) {
    // The same result delivered twice and batched together: one application, one
    // rejection, one set of audit rows.
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    let report = h
        .complete(vec![success(&c, json!("once")), success(&c, json!("once"))])
        .await;
    assert_eq!(report.applied.len(), 1, "{report:?}");
    assert_eq!(
        report.rejected,
        [c.step_uuid],
        "every result is either applied or rejected: {report:?}"
    );
    let completes = h
        .step_path(c.step_uuid)
        .await
        .into_iter()
        .filter(|(_, to, _)| to == "complete")
        .count();
    assert_eq!(completes, 1);
    assert_eq!(report.tasks.len(), 1);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn the_last_success_completes_the_task(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    for name in ["a", "b"] {
        let c = h.claim(NS, 10).await.remove(0);
        assert_eq!(c.name, name);
        let report = h.complete(vec![success(&c, json!(name))]).await;
        assert!(
            report.tasks.iter().all(|t| t.to == TaskState::StepsInProcess),
            "{report:?}"
        );
    }
    let c = h.claim(NS, 10).await.remove(0);
    h.clock.advance(500);
    let report = h.complete(vec![success(&c, json!("c"))]).await;
    assert_eq!(
        report.tasks,
        [TaskChange {
            task_uuid: task.task_uuid,
            from: TaskState::StepsInProcess,
            to: TaskState::Complete
        }]
    );
    assert!(report.enqueued.is_empty());
    let view = h.task(task.task_uuid).await;
    assert_eq!(view.state, TaskState::Complete);
    assert_eq!(view.completed_at, Some(h.now()));
    assert!(view.steps.iter().all(|s| s.state == StepState::Complete));
    let path = h.task_path(task.task_uuid).await;
    assert_eq!(
        path[path.len() - 2..],
        [
            hop(Some("steps_in_process"), "evaluating_results", "results_received"),
            hop(Some("evaluating_results"), "complete", "all_steps_successful"),
        ]
    );
    assert_eq!(path.iter().filter(|(_, to, _)| to == "complete").count(), 1);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_permanent_failure_with_nothing_in_flight_fails_the_task(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 10).await.remove(0);
    let report = h.complete(vec![fail(&a)]).await;
    assert_eq!(
        report.tasks,
        [TaskChange {
            task_uuid: task.task_uuid,
            from: TaskState::StepsInProcess,
            to: TaskState::Error
        }]
    );
    let view = h.task(task.task_uuid).await;
    assert_eq!(view.state, TaskState::Error);
    assert_eq!(view.completed_at, Some(h.now()));
    assert_eq!(
        view.steps.iter().map(|s| s.state).collect::<Vec<_>>(),
        [StepState::Error, StepState::Pending, StepState::Pending]
    );
    let path = h.task_path(task.task_uuid).await;
    assert_eq!(
        path[path.len() - 3..],
        [
            hop(Some("steps_in_process"), "evaluating_results", "results_received"),
            hop(Some("evaluating_results"), "blocked_by_failures", "permanent_failure"),
            hop(Some("blocked_by_failures"), "error", "give_up"),
        ]
    );
    assert!(h.claim(NS, 10).await.is_empty());
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_permanent_failure_of_a_held_task_blocks_it(h: Harness) {
    let mut task = linear(NS);
    task.hold_failed = true;
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 10).await.remove(0);
    let report = h.complete(vec![fail(&a)]).await;
    assert_eq!(
        report.tasks,
        [TaskChange {
            task_uuid: task.task_uuid,
            from: TaskState::StepsInProcess,
            to: TaskState::BlockedByFailures
        }]
    );
    let view = h.task(task.task_uuid).await;
    assert_eq!(view.state, TaskState::BlockedByFailures);
    assert_eq!(view.completed_at, None, "a held task is not finished");
    let path = h.task_path(task.task_uuid).await;
    assert_eq!(
        path.last().unwrap(),
        &hop(Some("evaluating_results"), "blocked_by_failures", "permanent_failure")
    );
    // Re-evaluating a held task leaves it where it is, silently.
    assert!(h
        .store
        .task_evaluate_many(vec![task.task_uuid], h.now(), "conformance".into())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.task_path(task.task_uuid).await, path);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_failure_with_other_steps_in_flight_keeps_the_task_running(h: Harness) {
    let task = parallel(NS, 2);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let audit_before = h.task_path(task.task_uuid).await;
    let report = h.complete(vec![fail(named(&claimed, "p0"))]).await;
    assert!(report.tasks.is_empty(), "p1 still runs: {report:?}");
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    assert_eq!(
        h.task_path(task.task_uuid).await,
        audit_before,
        "no audit rows for an evaluation that changes nothing"
    );
    let report = h.complete(vec![success(named(&claimed, "p1"), json!(1))]).await;
    assert_eq!(
        report.tasks,
        [TaskChange {
            task_uuid: task.task_uuid,
            from: TaskState::StepsInProcess,
            to: TaskState::Error
        }]
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn concurrent_last_results_finalize_each_task_exactly_once(h: Harness) {
    const TASKS: usize = 20;
    let tasks: Vec<NewTask> = (0..TASKS).map(|_| parallel(NS, 2)).collect();
    h.create(tasks.clone()).await;
    let claimed = h.claim(NS, 100).await;
    assert_eq!(claimed.len(), 2 * TASKS);

    // Both last results of every task are applied by separate, simultaneous calls,
    // while a finalizer re-evaluates every task at the same moment.
    let barrier = Arc::new(tokio::sync::Barrier::new(claimed.len() + TASKS));
    let mut calls = Vec::new();
    for c in &claimed {
        let store = h.store.clone();
        let barrier = barrier.clone();
        let completion = success(c, json!({"by": c.name}));
        let now = h.now();
        calls.push(tokio::spawn(async move {
            barrier.wait().await;
            let report = store
                .step_complete_many(StepCompleteManyParams {
                    eager: None,
                    completions: vec![completion],
                    now,
                    processor: "racer".into(),
                })
                .await
                .expect("step_complete_many");
            assert_eq!(report.applied.len(), 1, "{report:?}");
            report.tasks
        }));
    }
    for t in &tasks {
        let store = h.store.clone();
        let barrier = barrier.clone();
        let (task_uuid, now) = (t.task_uuid, h.now());
        calls.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .task_evaluate_many(vec![task_uuid], now, "finalizer".into())
                .await
                .expect("task_evaluate_many")
        }));
    }
    let mut finalized: HashMap<Uuid, usize> = HashMap::new();
    for call in calls {
        for t in call.await.unwrap().iter().filter(|t| t.to == TaskState::Complete) {
            *finalized.entry(t.task_uuid).or_default() += 1;
        }
    }
    for t in &tasks {
        assert_eq!(
            finalized.get(&t.task_uuid),
            Some(&1),
            "task {} reported complete {:?} times",
            t.task_uuid,
            finalized.get(&t.task_uuid)
        );
        assert_eq!(h.task_state(t.task_uuid).await, TaskState::Complete);
        let into_complete = h
            .task_path(t.task_uuid)
            .await
            .into_iter()
            .filter(|(_, to, _)| to == "complete")
            .count();
        assert_eq!(
            into_complete, 1,
            "task {} entered complete {into_complete} times",
            t.task_uuid
        );
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn a_batch_spanning_several_tasks_applies_all(h: Harness) {
    let lin = linear(NS);
    let one = single(NS);
    let par = parallel(NS, 2);
    h.create(vec![lin.clone(), one.clone(), par.clone()]).await;
    let claimed = h.claim(NS, 10).await;
    assert_eq!(claimed.len(), 4);
    let by_step = |u: Uuid| claimed.iter().find(|c| c.step_uuid == u).unwrap();
    let lin_a = by_step(step_uuid(&lin, "a"));
    let only = by_step(step_uuid(&one, "only"));
    let p0 = by_step(step_uuid(&par, "p0"));
    let p1 = by_step(step_uuid(&par, "p1"));
    let report = h
        .complete(vec![
            success(lin_a, json!("a")),
            success(only, json!("only")),
            fail(p0),
            retry_at(p1, h.now() + 1_000),
        ])
        .await;
    assert_eq!(report.applied.len(), 4, "{report:?}");
    assert!(report.rejected.is_empty());
    let state_of = |u: Uuid| report.applied.iter().find(|a| a.step_uuid == u).map(|a| a.state);
    assert_eq!(state_of(lin_a.step_uuid), Some(StepState::Complete));
    assert_eq!(state_of(only.step_uuid), Some(StepState::Complete));
    assert_eq!(state_of(p0.step_uuid), Some(StepState::Error));
    assert_eq!(state_of(p1.step_uuid), Some(StepState::WaitingForRetry));
    assert_eq!(
        report.enqueued,
        [EnqueuedStep {
            step_uuid: step_uuid(&lin, "b"),
            task_uuid: lin.task_uuid,
            namespace: NS.into()
        }]
    );
    let change = |u: Uuid| report.tasks.iter().find(|t| t.task_uuid == u).map(|t| (t.from, t.to));
    assert_eq!(
        change(lin.task_uuid),
        Some((TaskState::StepsInProcess, TaskState::StepsInProcess))
    );
    assert_eq!(
        change(one.task_uuid),
        Some((TaskState::StepsInProcess, TaskState::Complete))
    );
    assert_eq!(
        change(par.task_uuid),
        Some((TaskState::StepsInProcess, TaskState::Error))
    );
    assert_eq!(report.tasks.len(), 3);
    assert_eq!(h.task_state(lin.task_uuid).await, TaskState::StepsInProcess);
    assert_eq!(h.task_state(one.task_uuid).await, TaskState::Complete);
    assert_eq!(h.task_state(par.task_uuid).await, TaskState::Error);
    for t in [&lin, &one, &par] {
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn evaluating_a_settled_task_changes_nothing(h: Harness) {
    let running = parallel(NS, 2);
    let done = single(NS);
    h.create(vec![running.clone(), done.clone()]).await;
    let claimed = h.claim(NS, 10).await;
    h.complete(vec![success(
        claimed.iter().find(|c| c.task_uuid == done.task_uuid).unwrap(),
        json!(1),
    )])
    .await;
    assert_eq!(h.task_state(done.task_uuid).await, TaskState::Complete);
    let before = (h.task_path(running.task_uuid).await, h.task_path(done.task_uuid).await);
    let changes = h
        .store
        .task_evaluate_many(
            vec![running.task_uuid, done.task_uuid, Uuid::now_v7()],
            h.now(),
            "conformance".into(),
        )
        .await
        .unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    let again = h
        .store
        .task_evaluate_many(vec![done.task_uuid], h.now(), "conformance".into())
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(
        (h.task_path(running.task_uuid).await, h.task_path(done.task_uuid).await),
        before
    );
    assert_audit_consistent(&h.store, running.task_uuid).await;
    assert_audit_consistent(&h.store, done.task_uuid).await;
}

pub async fn eager_dispatch_claims_the_successor_in_the_same_transaction(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    let trips = h.store.round_trip_count();
    let report = h
        .complete_eager(
            vec![success(&a, json!({"value": 3, "nested": {"k": [1, 2]}}))],
            &[NS],
            1,
        )
        .await;
    let plain = if h.store.backend() == Backend::Sqlite { 2 } else { 5 };
    assert_eq!(
        h.store.round_trip_count() - trips,
        plain,
        "eager dispatch adds no round trip of its own"
    );
    assert_eq!(report.claimed.len(), 1);
    let b = &report.claimed[0];
    assert_eq!((b.name.as_str(), b.attempt, b.claim_seq), ("b", 1, 1));
    assert_eq!(b.dependency_results["a"], json!({"value": 3, "nested": {"k": [1, 2]}}));
    assert_eq!(b.context, task.context);
    assert!(
        report.enqueued.is_empty(),
        "a claimed successor is not reported as merely enqueued"
    );
    assert_eq!(h.step_state(b.step_uuid).await, StepState::InProgress);
    assert_eq!(
        h.step_path(b.step_uuid).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "enqueued", "enqueue"),
            hop(Some("enqueued"), "in_progress", "start")
        ]
    );
    // The eager claim is a real claim: a second claim does not see it, its result applies.
    assert!(h.claim(NS, 10).await.is_empty());
    let report = h.complete(vec![success(b, json!(2))]).await;
    assert_eq!(report.applied.len(), 1);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn eager_dispatch_respects_its_limit_and_namespaces(h: Harness) {
    let task = diamond(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    let report = h.complete_eager(vec![success(&a, json!(1))], &[NS], 1).await;
    assert_eq!(
        (report.claimed.len(), report.enqueued.len()),
        (1, 1),
        "one claimed, one left for others"
    );
    assert_eq!(h.claim(NS, 10).await.len(), 1);

    let other = diamond(NS);
    h.create_one(other.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    let report = h.complete_eager(vec![success(&a, json!(1))], &["elsewhere"], 8).await;
    assert!(
        report.claimed.is_empty(),
        "successors of another namespace are not claimed"
    );
    assert_eq!(report.enqueued.len(), 2);
    assert_audit_consistent(&h.store, task.task_uuid).await;
    assert_audit_consistent(&h.store, other.task_uuid).await;
}
