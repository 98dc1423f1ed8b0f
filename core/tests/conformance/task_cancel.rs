//! `task_cancel_many`, `step_ready_counts` and `schema_status`: what an operator and
//! the HTTP API ask of the store.

use super::*;
use tasker_core::store::{TaskCancelManyParams, TaskCancelOutcome};

async fn cancel(h: &Harness, task_uuids: Vec<Uuid>) -> Vec<TaskCancelOutcome> {
    h.store
        .task_cancel_many(TaskCancelManyParams {
            task_uuids,
            reason: Some("operator said so".into()),
            now: h.now(),
            processor: "operator".into(),
        })
        .await
        .expect("task_cancel_many")
}

pub async fn cancelling_a_running_task_cancels_it_and_its_unfinished_steps(h: Harness) {
    let task = diamond(NS);
    h.create_one(task.clone()).await;
    h.clock.advance(1_000);
    let a = h.claim(NS, 10).await;
    h.complete(vec![success(named(&a, "a"), json!(1))]).await;
    let running = h.claim(NS, 1).await;
    assert_eq!(running.len(), 1, "one of b, c is in progress");
    h.clock.advance(1_000);
    let outcomes = cancel(&h, vec![task.task_uuid]).await;
    assert_eq!(
        outcomes,
        vec![TaskCancelOutcome::Cancelled {
            task_uuid: task.task_uuid,
            namespace: NS.into(),
            steps_cancelled: 3,
        }]
    );
    let view = h.task(task.task_uuid).await;
    assert_eq!(view.state, TaskState::Cancelled);
    assert_eq!(view.completed_at, Some(h.now()));
    let states: Vec<(String, StepState)> = view.steps.iter().map(|s| (s.name.clone(), s.state)).collect();
    assert_eq!(
        states,
        vec![
            ("a".into(), StepState::Complete),
            ("b".into(), StepState::Cancelled),
            ("c".into(), StepState::Cancelled),
            ("d".into(), StepState::Cancelled),
        ]
    );
    let last = h.task_path(task.task_uuid).await.pop().unwrap();
    assert_eq!(last, hop(Some("steps_in_process"), "cancelled", "cancel"));
    let rows = h.store.task_transitions(task.task_uuid).await.unwrap();
    let row = rows.last().unwrap();
    assert_eq!(row.processor.as_deref(), Some("operator"));
    assert_eq!(row.metadata.as_ref().unwrap()["reason"], "operator said so");
    assert_eq!(row.created_at, h.now());
    let in_progress = &running[0];
    assert_eq!(
        h.step_path(in_progress.step_uuid).await.pop().unwrap(),
        hop(Some("in_progress"), "cancelled", "cancel")
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_late_result_for_a_cancelled_step_is_rejected(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 1).await;
    cancel(&h, vec![task.task_uuid]).await;
    let report = h.complete(vec![success(&claimed[0], json!("late"))]).await;
    assert_eq!(report.rejected, vec![claimed[0].step_uuid]);
    assert!(report.applied.is_empty() && report.tasks.is_empty());
    assert_eq!(h.step_state(claimed[0].step_uuid).await, StepState::Cancelled);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Cancelled);
    assert!(
        h.claim(NS, 10).await.is_empty(),
        "nothing of a cancelled task is claimable"
    );
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_finished_or_unknown_task_is_reported_and_left_alone(h: Harness) {
    let done = single(NS);
    let open = single(NS);
    h.create(vec![done.clone(), open.clone()]).await;
    let claimed = h.claim(NS, 10).await;
    let done_claim = claimed.iter().find(|c| c.task_uuid == done.task_uuid).unwrap();
    h.complete(vec![success(done_claim, json!(1))]).await;
    let unknown = Uuid::now_v7();
    let before = h.task_path(done.task_uuid).await;
    let outcomes = cancel(&h, vec![done.task_uuid, unknown, open.task_uuid]).await;
    assert_eq!(
        outcomes,
        vec![
            TaskCancelOutcome::AlreadyFinished {
                task_uuid: done.task_uuid,
                state: TaskState::Complete,
            },
            TaskCancelOutcome::NotFound { task_uuid: unknown },
            TaskCancelOutcome::Cancelled {
                task_uuid: open.task_uuid,
                namespace: NS.into(),
                steps_cancelled: 1,
            },
        ]
    );
    assert_eq!(
        h.task_path(done.task_uuid).await,
        before,
        "no audit row for a refused cancel"
    );
    let again = cancel(&h, vec![open.task_uuid]).await;
    assert_eq!(
        again,
        vec![TaskCancelOutcome::AlreadyFinished {
            task_uuid: open.task_uuid,
            state: TaskState::Cancelled,
        }]
    );
    assert!(cancel(&h, vec![]).await.is_empty());
}

pub async fn a_blocked_task_and_its_failed_step_can_be_cancelled(h: Harness) {
    let mut task = parallel(NS, 2);
    task.hold_failed = true;
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    h.complete(vec![fail(&claimed[0]), success(&claimed[1], json!(2))])
        .await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::BlockedByFailures);
    let outcomes = cancel(&h, vec![task.task_uuid]).await;
    assert!(matches!(
        outcomes[0],
        TaskCancelOutcome::Cancelled { steps_cancelled: 1, .. }
    ));
    assert_eq!(h.step_state(claimed[0].step_uuid).await, StepState::Cancelled);
    assert_eq!(h.step_state(claimed[1].step_uuid).await, StepState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn ready_counts_are_the_enqueued_steps_per_namespace(h: Harness) {
    assert!(h.store.step_ready_counts().await.unwrap().is_empty());
    h.create(vec![parallel(NS, 3), diamond(NS), single("other")]).await;
    let mut counts = h.store.step_ready_counts().await.unwrap();
    counts.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    let pairs: Vec<(String, u64)> = counts.into_iter().map(|c| (c.namespace, c.ready)).collect();
    assert_eq!(pairs, vec![(NS.to_string(), 4), ("other".to_string(), 1)]);
    let claimed = h.claim(NS, 2).await;
    h.complete(vec![retry_at(&claimed[0], h.now() + 60_000)]).await;
    let counts = h.store.step_ready_counts().await.unwrap();
    let ns = counts.iter().find(|c| c.namespace == NS).unwrap();
    assert_eq!(ns.ready, 2, "claimed and waiting-for-retry steps are not ready");
}

pub async fn the_schema_status_of_a_migrated_store_is_current(h: Harness) {
    let status = h.store.schema_status().await.expect("schema_status");
    assert!(status.expected >= 1);
    assert_eq!(status.applied, status.expected);
    assert!(status.is_current());
}

/// Cancels racing retry claims on the same tasks. A retry claim locks the step, then
/// resumes its task; a cancel locks the task, then its steps. Neither may wait for
/// the other while holding its own lock (PostgreSQL would report a deadlock): every
/// call succeeds and every task ends cancelled with all its steps.
pub async fn cancels_racing_retry_claims_never_deadlock(h: Harness) {
    const TASKS: usize = 24;
    let tasks: Vec<NewTask> = (0..TASKS).map(|_| parallel(NS, 3)).collect();
    h.create(tasks.clone()).await;
    let claimed = h.claim(NS, 100).await;
    assert_eq!(claimed.len(), TASKS * 3);
    let retries: Vec<StepCompletion> = claimed.iter().map(|c| retry_at(c, h.now() + 10)).collect();
    h.complete(retries).await;
    h.clock.advance(10);
    let now = h.now();
    let mut jobs = Vec::new();
    for w in 0..3 {
        let store = h.store.clone();
        jobs.push(tokio::spawn(async move {
            for _ in 0..TASKS {
                store
                    .step_claim_ready_many(tasker_core::store::StepClaimReadyManyParams {
                        namespace: NS.into(),
                        limit: 2,
                        now,
                        lease_ms: LEASE_MS,
                        worker_id: format!("claimer-{w}"),
                    })
                    .await
                    .expect("a claim racing cancels must not fail");
            }
        }));
    }
    for chunk in tasks.chunks(4) {
        let store = h.store.clone();
        let ids: Vec<Uuid> = chunk.iter().map(|t| t.task_uuid).collect();
        jobs.push(tokio::spawn(async move {
            for id in ids {
                store
                    .task_cancel(id, Some("race".into()), now, "operator".into())
                    .await
                    .expect("a cancel racing claims must not fail");
            }
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }
    for t in &tasks {
        let view = h.task(t.task_uuid).await;
        assert_eq!(view.state, TaskState::Cancelled);
        assert!(view.steps.iter().all(|s| s.state == StepState::Cancelled), "{view:?}");
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}
