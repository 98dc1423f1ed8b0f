//! `task_create_many`: tasks, steps and edges in one call; duplicates; empty tasks.

use super::*;
use tasker_core::store::TaskListParams;

pub async fn creates_the_task_its_steps_and_edges_in_one_call(h: Harness) {
    let task = diamond(NS);
    let (a, d) = (step_uuid(&task, "a"), step_uuid(&task, "d"));
    let tx_before = h.store.transaction_count();
    let created = h.create_one(task.clone()).await;
    assert_eq!(
        h.store.transaction_count() - tx_before,
        1,
        "creation is one transaction"
    );

    let view = h.task(created.task_uuid).await;
    assert_eq!(view.task_uuid, task.task_uuid);
    assert_eq!(view.namespace, NS);
    assert_eq!(view.name, "diamond");
    assert_eq!(view.version, "1.0.0");
    assert_eq!(view.context, task.context);
    assert_eq!(view.correlation_id, task.correlation_id);
    assert_eq!(view.created_at, h.now());
    assert_eq!(view.completed_at, None);
    assert_eq!(
        view.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    for (v, s) in view.steps.iter().zip(&task.steps) {
        assert_eq!(v.step_uuid, s.step_uuid);
        assert_eq!(v.handler, s.handler_callable);
        assert_eq!(v.max_attempts, 3);
        assert_eq!(v.attempts, 0);
        assert_eq!(v.result, None);
    }

    // The edges are observable through execution: d waits for both b and c.
    let root = h.claim(NS, 10).await;
    assert_eq!(root.iter().map(|c| c.step_uuid).collect::<Vec<_>>(), [a]);
    h.complete(vec![success(&root[0], json!(1))]).await;
    let mid = h.claim(NS, 10).await;
    let mut names: Vec<&str> = mid.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["b", "c"]);
    h.complete(vec![success(named(&mid, "b"), json!(2))]).await;
    assert_eq!(h.step_state(d).await, StepState::Pending, "d still waits for c");
    assert!(h.claim(NS, 10).await.is_empty());
    h.complete(vec![success(named(&mid, "c"), json!(3))]).await;
    let last = h.claim(NS, 10).await;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].step_uuid, d);
    assert_eq!(last[0].dependency_results.keys().collect::<Vec<_>>(), ["b", "c"]);
    assert_audit_consistent(&h.store, created.task_uuid).await;
}

pub async fn enqueues_roots_and_leaves_children_pending(h: Harness) {
    let task = new_task(
        NS,
        "two_roots",
        &[("r1", &[]), ("r2", &[]), ("child", &["r1"]), ("join", &["r2", "child"])],
    );
    let created = h.create_one(task.clone()).await;
    assert_eq!(created.state, TaskState::StepsInProcess);
    let view = h.task(created.task_uuid).await;
    let states: Vec<(&str, StepState)> = view.steps.iter().map(|s| (s.name.as_str(), s.state)).collect();
    assert_eq!(
        states,
        [
            ("r1", StepState::Enqueued),
            ("r2", StepState::Enqueued),
            ("child", StepState::Pending),
            ("join", StepState::Pending)
        ]
    );
    assert_eq!(h.task_state(created.task_uuid).await, TaskState::StepsInProcess);
    let listed = h
        .store
        .task_list(TaskListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].step_count, 4);
    assert_eq!(listed[0].state, TaskState::StepsInProcess);
    assert_audit_consistent(&h.store, created.task_uuid).await;
}

pub async fn reports_what_it_created(h: Harness) {
    let a = linear(NS);
    let b = parallel("other", 3);
    let created = h.create(vec![a.clone(), b.clone()]).await;
    assert_eq!(
        created,
        vec![
            TaskCreated {
                task_uuid: a.task_uuid,
                created: true,
                state: TaskState::StepsInProcess,
                enqueued_steps: 1,
                namespace: NS.into(),
                enqueued_namespaces: vec![NS.into()],
            },
            TaskCreated {
                task_uuid: b.task_uuid,
                created: true,
                state: TaskState::StepsInProcess,
                enqueued_steps: 3,
                namespace: "other".into(),
                enqueued_namespaces: vec!["other".into()],
            },
        ]
    );
    for c in &created {
        assert_eq!(h.task_state(c.task_uuid).await, c.state);
        assert_audit_consistent(&h.store, c.task_uuid).await;
    }
}

pub async fn a_duplicate_identity_returns_the_existing_task_and_creates_nothing(h: Harness) {
    let mut first = linear(NS);
    first.identity_hash = "same-identity".into();
    let original = h.create_one(first.clone()).await;

    h.clock.advance(1_000);
    let mut again = linear(NS);
    again.identity_hash = "same-identity".into();
    let dup = h.create(vec![again.clone()]).await;
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].task_uuid, original.task_uuid, "the existing task is returned");
    assert!(!dup[0].created);
    assert_eq!(dup[0].state, TaskState::StepsInProcess);
    assert_eq!(dup[0].namespace, NS);

    assert!(
        h.store.task_get(again.task_uuid).await.unwrap().is_none(),
        "no second task row"
    );
    for s in &again.steps {
        assert!(
            h.store.step_get(s.step_uuid).await.unwrap().is_none(),
            "no steps of the duplicate"
        );
        assert!(h.store.step_transitions(s.step_uuid).await.unwrap().is_empty());
    }
    let all = h
        .store
        .task_list(TaskListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        h.claim(NS, 10).await.len(),
        1,
        "only the original task's root is claimable"
    );
    assert_eq!(
        h.task(original.task_uuid).await.created_at,
        T0,
        "the original is untouched"
    );
    assert_audit_consistent(&h.store, original.task_uuid).await;
}

pub async fn two_duplicates_in_one_batch_create_one_task(h: Harness) {
    let mut x = single(NS);
    let mut y = single(NS);
    let z = single(NS);
    x.identity_hash = "batch-identity".into();
    y.identity_hash = "batch-identity".into();
    let created = h.create(vec![x.clone(), y.clone(), z.clone()]).await;
    assert_eq!(created.len(), 3, "one answer per requested task, in order");
    assert_eq!(created[0].task_uuid, x.task_uuid);
    assert!(created[0].created);
    assert_eq!(
        created[1].task_uuid, x.task_uuid,
        "the duplicate points at the task created first"
    );
    assert!(!created[1].created);
    assert_eq!(created[2].task_uuid, z.task_uuid);
    assert!(created[2].created);

    assert!(h.store.task_get(y.task_uuid).await.unwrap().is_none());
    assert!(h.store.step_get(y.steps[0].step_uuid).await.unwrap().is_none());
    let all = h
        .store
        .task_list(TaskListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(h.claim(NS, 10).await.len(), 2);

    // And again, in a later batch: both duplicates of existing tasks.
    let mut x2 = single(NS);
    x2.identity_hash = "batch-identity".into();
    let mut x3 = single(NS);
    x3.identity_hash = "batch-identity".into();
    let again = h.create(vec![x2, x3]).await;
    assert!(
        again.iter().all(|c| !c.created && c.task_uuid == x.task_uuid),
        "{again:?}"
    );
    assert_eq!(
        h.store
            .task_list(TaskListParams {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        2
    );
    assert_audit_consistent(&h.store, x.task_uuid).await;
    assert_audit_consistent(&h.store, z.task_uuid).await;
}

pub async fn a_task_without_steps_is_created_complete(h: Harness) {
    let empty = new_task(NS, "empty", &[]);
    let created = h.create_one(empty.clone()).await;
    assert_eq!(created.state, TaskState::Complete);
    assert_eq!(created.enqueued_steps, 0);
    let view = h.task(empty.task_uuid).await;
    assert_eq!(view.state, TaskState::Complete);
    assert_eq!(view.completed_at, Some(h.now()));
    assert!(view.steps.is_empty());
    assert_eq!(
        h.task_path(empty.task_uuid).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "initializing", "start"),
            hop(Some("initializing"), "complete", "no_steps_found"),
        ]
    );
    assert!(h.claim(NS, 10).await.is_empty());
    assert_audit_consistent(&h.store, empty.task_uuid).await;
}

pub async fn tasks_of_the_same_template_share_its_row(h: Harness) {
    // The Store API has no template read; what is observable is that a template's
    // row is written once and reused: the same template (same content hash) in one
    // batch and again in later batches never conflicts, and every task names it.
    let batch = vec![linear(NS), linear(NS), linear(NS)];
    assert_eq!(batch[0].template.content_hash, batch[1].template.content_hash);
    let created = h.create(batch).await;
    assert!(created.iter().all(|c| c.created), "{created:?}");
    h.clock.advance(10);
    let later = h.create_one(linear(NS)).await;
    let mut all = created.iter().map(|c| c.task_uuid).collect::<Vec<_>>();
    all.push(later.task_uuid);
    for t in all {
        let v = h.task(t).await;
        assert_eq!(
            (v.namespace.as_str(), v.name.as_str(), v.version.as_str()),
            (NS, "linear", "1.0.0")
        );
    }
    assert_eq!(h.run_all(NS).await, 12);
    let listed = h
        .store
        .task_list(TaskListParams {
            state: Some(TaskState::Complete),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
}

pub async fn two_hundred_tasks_in_one_call_are_all_created(h: Harness) {
    let tasks: Vec<NewTask> = (0..200)
        .map(|i| if i % 2 == 0 { linear(NS) } else { diamond(NS) })
        .collect();
    let tx_before = h.store.transaction_count();
    let created = h.create(tasks.clone()).await;
    assert_eq!(
        h.store.transaction_count() - tx_before,
        1,
        "one transaction for the whole batch"
    );
    assert_eq!(created.len(), 200);
    for (c, t) in created.iter().zip(&tasks) {
        assert_eq!(c.task_uuid, t.task_uuid);
        assert!(c.created);
        assert_eq!(c.enqueued_steps, 1);
    }
    let listed = h
        .store
        .task_list(TaskListParams {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 200);
    assert_eq!(
        listed.iter().map(|t| t.step_count as usize).sum::<usize>(),
        100 * 3 + 100 * 4
    );
    let roots = h.claim(NS, 1_000).await;
    assert_eq!(roots.len(), 200, "every task's root is enqueued");
    assert!(roots.iter().all(|c| c.name == "a"));
    for t in tasks.iter().step_by(37) {
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn an_empty_batch_creates_nothing(h: Harness) {
    assert!(h.create(vec![]).await.is_empty());
    assert!(h
        .store
        .task_list(TaskListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_duplicate_reports_the_existing_tasks_state_and_namespace(h: Harness) {
    // The answer for a duplicate describes the task that exists, not the request.
    let mut original = single(NS);
    original.identity_hash = "shared-key".into();
    h.create_one(original.clone()).await;
    h.run_all(NS).await;
    assert_eq!(h.task_state(original.task_uuid).await, TaskState::Complete);

    let mut dup = single("another-namespace");
    dup.identity_hash = "shared-key".into();
    let answer = h.create(vec![dup]).await.remove(0);
    assert_eq!(answer.task_uuid, original.task_uuid);
    assert!(!answer.created);
    assert_eq!(answer.state, TaskState::Complete, "the existing task's current state");
    assert_eq!(answer.enqueued_steps, 0);
    assert_eq!(answer.namespace, NS, "the existing task's namespace");
    assert!(h
        .store
        .task_list(TaskListParams {
            namespace: Some("another-namespace".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

pub async fn concurrent_creations_of_one_identity_create_one_task(h: Harness) {
    // 50 identical submissions at once (the figure): one task, 49 answers naming it.
    const RACERS: usize = 50;
    let mut calls = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    for _ in 0..RACERS {
        let mut task = diamond(NS);
        task.identity_hash = "raced-identity".into();
        let store = h.store.clone();
        let barrier = barrier.clone();
        let now = h.now();
        calls.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .task_create_many(TaskCreateManyParams {
                    tasks: vec![task],
                    now,
                    processor: "racer".into(),
                })
                .await
                .expect("a duplicate is an answer, not an error")
                .remove(0)
        }));
    }
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|a| a.created).count(), 1, "{answers:?}");
    let winner = answers.iter().find(|a| a.created).unwrap().task_uuid;
    assert!(answers.iter().all(|a| a.task_uuid == winner), "{answers:?}");
    assert_eq!(
        h.store
            .task_list(TaskListParams {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(h.claim(NS, 10).await.len(), 1, "one root, of the one task");
    assert_eq!(h.task(winner).await.steps.len(), 4);
    assert_audit_consistent(&h.store, winner).await;
}
