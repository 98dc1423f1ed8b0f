//! `step_claim_ready_many`: which steps a claim takes, what it writes, what it hands out.

use super::*;
use std::collections::HashSet;

pub async fn claims_only_enqueued_steps_of_the_given_namespace(h: Harness) {
    let mine = diamond(NS);
    let other = diamond("elsewhere");
    let single_mine = single(NS);
    h.create(vec![mine.clone(), other.clone(), single_mine.clone()]).await;

    let claimed = h.claim(NS, 100).await;
    let got: HashSet<Uuid> = claimed.iter().map(|c| c.step_uuid).collect();
    let want: HashSet<Uuid> = [step_uuid(&mine, "a"), single_mine.steps[0].step_uuid].into();
    assert_eq!(got, want, "only the enqueued roots of `{NS}`");
    assert!(claimed.iter().all(|c| c.namespace == NS));
    assert_eq!(
        h.step_state(step_uuid(&other, "a")).await,
        StepState::Enqueued,
        "the other namespace is untouched"
    );
    for name in ["b", "c", "d"] {
        assert_eq!(h.step_state(step_uuid(&mine, name)).await, StepState::Pending);
    }
    let theirs = h.claim("elsewhere", 100).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].step_uuid, step_uuid(&other, "a"));
    assert!(h.claim("nobody", 100).await.is_empty());
    for t in [&mine, &other, &single_mine] {
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn a_step_with_its_own_namespace_is_claimed_only_from_that_namespace(h: Harness) {
    // a (template namespace) -> b (routed to "elsewhere") -> c (template namespace)
    let mut task = linear(NS);
    task.steps[1].namespace = "elsewhere".into();
    let created = h.create_one(task.clone()).await;
    assert_eq!(created.namespace, NS);
    assert_eq!(created.enqueued_namespaces, vec![NS.to_string()]);
    let a = h.claim(NS, 10).await;
    assert_eq!(a.len(), 1);
    // Eager dispatch in the template's namespace does not take the routed child.
    let report = h.complete_eager(vec![success(&a[0], json!({"v": 1}))], &[NS], 10).await;
    assert!(report.claimed.is_empty(), "b is not in {NS}: {:?}", report.claimed);
    assert_eq!(
        report.enqueued.iter().map(|e| e.namespace.as_str()).collect::<Vec<_>>(),
        ["elsewhere"]
    );
    assert!(h.claim(NS, 10).await.is_empty(), "b is not claimable from {NS}");
    let b = h.claim("elsewhere", 10).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].name, "b");
    assert_eq!(b[0].namespace, "elsewhere", "claimed from its own namespace");
    assert_eq!(b[0].task_namespace, NS, "its template's namespace");
    assert_eq!(b[0].dependency_results["a"], json!({"v": 1}));
    let report = h
        .complete_eager(vec![success(&b[0], json!({"v": 2}))], &["elsewhere"], 10)
        .await;
    assert!(report.claimed.is_empty(), "c is back in {NS}");
    let c = h.claim(NS, 10).await;
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].namespace.as_str(), c[0].task_namespace.as_str()), (NS, NS));
    h.complete(vec![success(&c[0], json!({"v": 3}))]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn claim_never_returns_more_than_the_limit(h: Harness) {
    h.create(vec![parallel(NS, 5), parallel(NS, 5)]).await;
    assert!(h.claim(NS, 0).await.is_empty(), "limit 0 claims nothing");
    let first = h.claim(NS, 3).await;
    assert_eq!(first.len(), 3);
    let second = h.claim(NS, 4).await;
    assert_eq!(second.len(), 4);
    let third = h.claim(NS, 4).await;
    assert_eq!(third.len(), 3, "only three were left");
    assert!(h.claim(NS, 4).await.is_empty());
}

pub async fn a_second_claim_does_not_return_claimed_steps(h: Harness) {
    let task = parallel(NS, 6);
    h.create_one(task.clone()).await;
    let first = h.claim_as(NS, 4, "w1").await;
    let second = h.claim_as(NS, 4, "w2").await;
    assert_eq!(first.len(), 4);
    assert_eq!(second.len(), 2);
    let a: HashSet<Uuid> = first.iter().map(|c| c.step_uuid).collect();
    let b: HashSet<Uuid> = second.iter().map(|c| c.step_uuid).collect();
    assert!(a.is_disjoint(&b));
    assert_eq!(a.len() + b.len(), 6);
    for s in &task.steps {
        assert_eq!(h.step_state(s.step_uuid).await, StepState::InProgress);
    }
    assert!(h.claim(NS, 10).await.is_empty());
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_claim_increments_attempts_and_claim_seq(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c1 = h.claim(NS, 1).await.remove(0);
    assert_eq!((c1.attempt, c1.claim_seq), (1, 1));
    assert_eq!(h.step(c1.step_uuid).await.attempts, 1);

    h.complete(vec![retry_at(&c1, h.now() + 1_000)]).await;
    h.clock.advance(1_000);
    let c2 = h.claim(NS, 1).await.remove(0);
    assert_eq!(c2.step_uuid, c1.step_uuid);
    assert_eq!((c2.attempt, c2.claim_seq), (2, 2));
    assert_eq!(h.step(c2.step_uuid).await.attempts, 2);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_claim_sets_the_deadline_and_a_lease_no_later_than_it(h: Harness) {
    let mut task = new_task(NS, "timeouts", &[("short", &[]), ("long", &[])]);
    task.steps[0].timeout_ms = 10_000; // shorter than the lease
    task.steps[1].timeout_ms = 120_000; // longer than the lease
    h.create_one(task.clone()).await;
    let now = h.now();
    let claimed = h.claim(NS, 10).await;
    let short = named(&claimed, "short");
    let long = named(&claimed, "long");
    assert_eq!(short.timeout_ms, 10_000);
    assert_eq!(short.deadline_at, now + 10_000);
    assert_eq!(
        short.lease_expires_at,
        now + 10_000,
        "a lease never outlives the attempt's deadline"
    );
    assert_eq!(long.deadline_at, now + 120_000);
    assert_eq!(long.lease_expires_at, now + LEASE_MS);
    for c in &claimed {
        assert!(c.lease_expires_at <= c.deadline_at);
        assert!(c.lease_expires_at > now);
    }
}

pub async fn a_claimed_child_receives_its_parents_results_verbatim(h: Harness) {
    let task = new_task(
        NS,
        "fan_in",
        &[("left", &[]), ("right", &[]), ("join", &["left", "right"])],
    );
    h.create_one(task.clone()).await;
    let left_result = json!({
        "nested": {"deep": {"list": [1, 2, {"x": null}], "flag": true}},
        "big": 9_007_199_254_740_991_i64,
        "negative": -9_007_199_254_740_991_i64,
        "float": 0.125,
        "unicode": "héllo wörld — 世界 🎉",
        "escapes": "quote \" backslash \\ newline \n tab \t ctrl \u{1}",
        "empty": {},
    });
    let right_result = json!([1, "two", 3.5, [], null]);
    let roots = h.claim(NS, 10).await;
    h.complete(vec![
        success(named(&roots, "left"), left_result.clone()),
        success(named(&roots, "right"), right_result.clone()),
    ])
    .await;
    let join = h.claim(NS, 10).await;
    assert_eq!(join.len(), 1);
    let deps = &join[0].dependency_results;
    assert_eq!(deps.len(), 2, "exactly one entry per parent: {deps:?}");
    assert_eq!(deps["left"], left_result);
    assert_eq!(deps["right"], right_result);
    assert_eq!(deps["left"]["big"].as_i64(), Some(9_007_199_254_740_991));
    assert_eq!(h.step(step_uuid(&task, "left")).await.result, Some(left_result));
    assert!(
        roots.iter().all(|c| c.dependency_results.is_empty()),
        "roots have no dependencies"
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_claimed_step_carries_its_task_context_and_definition(h: Harness) {
    let mut task = single(NS);
    task.context = json!({"order": {"id": 42, "lines": [{"sku": "ä-1", "qty": 2}]}, "big": 4_503_599_627_370_497_i64});
    task.steps[0].handler_initialization = json!({"url": "https://example.test", "retries": [1, 2]});
    task.steps[0].retry.max_attempts = 7;
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    assert_eq!(c.task_uuid, task.task_uuid);
    assert_eq!(c.context, task.context);
    assert_eq!(c.correlation_id, task.correlation_id);
    assert_eq!(c.name, "only");
    assert_eq!(c.template_step_name, "only");
    assert_eq!(c.namespace, NS);
    assert_eq!(c.task_namespace, NS);
    assert_eq!(c.task_name, "single");
    assert_eq!(c.task_version, "1.0.0");
    assert_eq!(c.step_type, "standard");
    assert_eq!(c.handler_callable, "handlers.only");
    assert_eq!(c.handler_method, "call");
    assert_eq!(c.handler_initialization, task.steps[0].handler_initialization);
    assert_eq!(c.retry.max_attempts, 7);
    assert_eq!(c.checkpoint, None);
    assert!(c.dependency_results.is_empty());
}

pub async fn a_step_waiting_for_retry_is_claimed_only_once_its_delay_has_passed(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c1 = h.claim(NS, 1).await.remove(0);
    let ready_at = h.now() + 5_000;
    let report = h.complete(vec![retry_at(&c1, ready_at)]).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(h.step_state(c1.step_uuid).await, StepState::WaitingForRetry);

    assert!(h.claim(NS, 10).await.is_empty(), "not before ready_at");
    h.clock.advance(4_999);
    assert!(h.claim(NS, 10).await.is_empty(), "not one millisecond before ready_at");
    h.clock.advance(1);
    let c2 = h.claim(NS, 10).await;
    assert_eq!(c2.len(), 1, "claimable exactly at ready_at");
    assert_eq!(c2[0].step_uuid, c1.step_uuid);
    assert_eq!(c2[0].attempt, 2);

    let steps = h.step_path(c1.step_uuid).await;
    assert_eq!(
        steps,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "enqueued", "enqueue"),
            hop(Some("enqueued"), "in_progress", "start"),
            hop(Some("in_progress"), "enqueued_as_error_for_orchestration", "fail"),
            hop(
                Some("enqueued_as_error_for_orchestration"),
                "waiting_for_retry",
                "wait_for_retry"
            ),
            hop(Some("waiting_for_retry"), "pending", "retry"),
            hop(Some("pending"), "enqueued", "enqueue"),
            hop(Some("enqueued"), "in_progress", "start"),
        ]
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn claiming_a_retried_step_resumes_its_waiting_task(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c1 = h.claim(NS, 1).await.remove(0);
    let report = h.complete(vec![retry_at(&c1, h.now() + 1_000)]).await;
    assert_eq!(
        report.tasks,
        [TaskChange {
            task_uuid: task.task_uuid,
            from: TaskState::StepsInProcess,
            to: TaskState::WaitingForRetry
        }]
    );
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::WaitingForRetry);

    h.clock.advance(1_000);
    let before = h.task_path(task.task_uuid).await.len();
    let c2 = h.claim(NS, 1).await;
    assert_eq!(c2.len(), 1);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    let path = h.task_path(task.task_uuid).await;
    assert_eq!(
        path[before..],
        [
            hop(Some("waiting_for_retry"), "enqueuing_steps", "retry_ready"),
            hop(Some("enqueuing_steps"), "steps_in_process", "steps_enqueued"),
        ]
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;

    // And the resumed task finishes normally.
    let report = h.complete(vec![success(&c2[0], json!("ok"))]).await;
    assert_eq!(report.tasks.last().map(|c| c.to), Some(TaskState::Complete));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn steps_of_a_finished_task_are_never_claimed(h: Harness) {
    // `a` waits for a retry while `b` fails for good: nothing is in flight, so the
    // task ends in error with `a` still waiting. Once a's delay passes it must not
    // be claimed. The same with hold_failed (blocked_by_failures).
    for hold in [false, true] {
        let mut task = new_task(NS, if hold { "held" } else { "unheld" }, &[("a", &[]), ("b", &[])]);
        task.hold_failed = hold;
        h.create_one(task.clone()).await;
        let claimed = h.claim(NS, 10).await;
        assert_eq!(claimed.len(), 2);
        h.complete(vec![retry_at(named(&claimed, "a"), h.now() + 1_000)]).await;
        let report = h.complete(vec![fail(named(&claimed, "b"))]).await;
        let end = if hold {
            TaskState::BlockedByFailures
        } else {
            TaskState::Error
        };
        assert_eq!(report.tasks.last().map(|c| c.to), Some(end), "{report:?}");
        assert_eq!(h.task_state(task.task_uuid).await, end);
        assert_eq!(h.step_state(step_uuid(&task, "a")).await, StepState::WaitingForRetry);

        h.clock.advance(10_000);
        assert!(h.claim(NS, 10).await.is_empty(), "a step of a {end} task was claimed");
        assert_eq!(h.step_state(step_uuid(&task, "a")).await, StepState::WaitingForRetry);
        assert_eq!(h.task_state(task.task_uuid).await, end);
        assert_audit_consistent(&h.store, task.task_uuid).await;
    }
}

pub async fn concurrent_claims_never_return_the_same_step(h: Harness) {
    let tasks: Vec<NewTask> = (0..10).map(|_| parallel(NS, 12)).collect();
    h.create(tasks.clone()).await;
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = h.store.clone();
        let now = h.now();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .step_claim_ready_many(StepClaimReadyManyParams {
                        namespace: NS.into(),
                        limit: 7,
                        now,
                        lease_ms: LEASE_MS,
                        worker_id: format!("w{w}"),
                    })
                    .await
                    .expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| (c.step_uuid, c.claim_seq)));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<Uuid> = all.iter().map(|(u, _)| *u).collect();
    assert_eq!(unique.len(), all.len(), "a step was handed to two claims");
    assert_eq!(all.len(), 120, "every step claimed exactly once");
    assert!(all.iter().all(|(_, seq)| *seq == 1));
    for t in &tasks {
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn a_retried_step_of_a_running_task_leaves_the_task_running(h: Harness) {
    let task = parallel(NS, 2);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let report = h.complete(vec![retry_at(named(&claimed, "p0"), h.now() + 1_000)]).await;
    assert!(report.tasks.is_empty(), "p1 still runs: {report:?}");
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    let audit = h.task_path(task.task_uuid).await;

    h.clock.advance(1_000);
    let again = h.claim(NS, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].name.as_str(), again[0].attempt), ("p0", 2));
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    assert_eq!(
        h.task_path(task.task_uuid).await,
        audit,
        "a running task is not resumed"
    );
    let report = h
        .complete(vec![
            success(&again[0], json!(0)),
            success(named(&claimed, "p1"), json!(1)),
        ])
        .await;
    assert_eq!(report.tasks.last().map(|t| t.to), Some(TaskState::Complete));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}
