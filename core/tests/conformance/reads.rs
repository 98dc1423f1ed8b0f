//! Reads (task_get, task_list, transitions) and the cost of the hot paths in statements.

use super::*;
use std::collections::HashSet;
use tasker_core::store::{Backend, TaskListParams, TaskSummary};

async fn list(
    h: &Harness,
    state: Option<TaskState>,
    namespace: Option<&str>,
    limit: u32,
    offset: u32,
) -> Vec<TaskSummary> {
    h.store
        .task_list(TaskListParams {
            state,
            namespace: namespace.map(String::from),
            limit,
            offset,
        })
        .await
        .expect("task_list")
}

fn uuids(rows: &[TaskSummary]) -> Vec<Uuid> {
    rows.iter().map(|r| r.task_uuid).collect()
}

pub async fn task_get_lists_steps_in_creation_order(h: Harness) {
    // Names deliberately out of alphabetical order, children before unrelated roots.
    let task = new_task(
        NS,
        "ordered",
        &[
            ("zeta", &[]),
            ("mid", &["zeta"]),
            ("alpha", &[]),
            ("omega", &["mid", "alpha"]),
        ],
    );
    h.create_one(task.clone()).await;
    let names = |v: &TaskView| v.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&h.task(task.task_uuid).await), ["zeta", "mid", "alpha", "omega"]);
    // The order survives state changes.
    h.clock.advance(5_000);
    let claimed = h.claim(NS, 10).await;
    h.complete(vec![success(named(&claimed, "alpha"), json!(1))]).await;
    let view = h.task(task.task_uuid).await;
    assert_eq!(names(&view), ["zeta", "mid", "alpha", "omega"]);
    assert_eq!(
        view.steps.iter().map(|s| s.step_uuid).collect::<Vec<_>>(),
        task.steps.iter().map(|s| s.step_uuid).collect::<Vec<_>>()
    );
    assert_eq!(view.steps[2].state, StepState::Complete);
    assert_eq!(view.steps[2].result, Some(json!(1)));
}

pub async fn task_list_filters_by_state(h: Harness) {
    let done = single(NS);
    let failed = single(NS);
    let running = linear(NS);
    h.create(vec![done.clone(), failed.clone(), running.clone()]).await;
    let claimed = h.claim(NS, 10).await;
    let of = |t: &NewTask| claimed.iter().find(|c| c.task_uuid == t.task_uuid).unwrap().clone();
    h.clock.advance(700);
    h.complete(vec![success(&of(&done), json!(1)), fail(&of(&failed))])
        .await;

    let complete = list(&h, Some(TaskState::Complete), None, 10, 0).await;
    assert_eq!(uuids(&complete), [done.task_uuid]);
    assert_eq!(complete[0].completed_at, Some(T0 + 700));
    assert_eq!(complete[0].created_at, T0);
    assert_eq!(
        (
            complete[0].namespace.as_str(),
            complete[0].name.as_str(),
            complete[0].version.as_str()
        ),
        (NS, "single", "1.0.0")
    );
    assert_eq!(complete[0].step_count, 1);
    assert_eq!(
        uuids(&list(&h, Some(TaskState::Error), None, 10, 0).await),
        [failed.task_uuid]
    );
    let in_process = list(&h, Some(TaskState::StepsInProcess), None, 10, 0).await;
    assert_eq!(uuids(&in_process), [running.task_uuid]);
    assert_eq!(in_process[0].completed_at, None);
    assert!(list(&h, Some(TaskState::WaitingForRetry), None, 10, 0).await.is_empty());
    assert_eq!(list(&h, None, None, 10, 0).await.len(), 3);
}

pub async fn task_list_filters_by_namespace(h: Harness) {
    let a1 = single("alpha");
    let a2 = linear("alpha");
    let b1 = single("beta");
    h.create(vec![a1.clone(), a2.clone(), b1.clone()]).await;
    let claimed = h.claim("alpha", 10).await;
    h.complete(vec![success(
        claimed.iter().find(|c| c.task_uuid == a1.task_uuid).unwrap(),
        json!(1),
    )])
    .await;

    let alpha: HashSet<Uuid> = uuids(&list(&h, None, Some("alpha"), 10, 0).await).into_iter().collect();
    assert_eq!(alpha, [a1.task_uuid, a2.task_uuid].into());
    assert_eq!(uuids(&list(&h, None, Some("beta"), 10, 0).await), [b1.task_uuid]);
    assert!(list(&h, None, Some("gamma"), 10, 0).await.is_empty());
    assert_eq!(
        uuids(&list(&h, Some(TaskState::Complete), Some("alpha"), 10, 0).await),
        [a1.task_uuid]
    );
    assert!(list(&h, Some(TaskState::Complete), Some("beta"), 10, 0)
        .await
        .is_empty());
    assert!(list(&h, None, Some("beta"), 10, 0)
        .await
        .iter()
        .all(|t| t.namespace == "beta"));
}

pub async fn task_list_is_newest_first_and_paginates(h: Harness) {
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(h.create_one(single(NS)).await.task_uuid);
        h.clock.advance(10);
    }
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();
    assert_eq!(uuids(&list(&h, None, None, 100, 0).await), newest_first);
    assert_eq!(uuids(&list(&h, None, None, 2, 0).await), newest_first[0..2]);
    assert_eq!(uuids(&list(&h, None, None, 2, 2).await), newest_first[2..4]);
    assert_eq!(uuids(&list(&h, None, None, 2, 4).await), newest_first[4..5]);
    assert!(list(&h, None, None, 2, 5).await.is_empty());
    let times: Vec<i64> = list(&h, None, None, 100, 0)
        .await
        .iter()
        .map(|t| t.created_at)
        .collect();
    assert_eq!(times, [T0 + 40, T0 + 30, T0 + 20, T0 + 10, T0]);

    // Tasks created together share a creation time; pages still neither repeat
    // nor skip any of them.
    let batch: Vec<NewTask> = (0..7).map(|_| single("batch")).collect();
    h.create(batch.clone()).await;
    let mut seen = Vec::new();
    for page in 0..4 {
        seen.extend(uuids(&list(&h, None, Some("batch"), 3, page * 3).await));
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let want: HashSet<Uuid> = batch.iter().map(|t| t.task_uuid).collect();
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), want);
    // The newest batch comes before the older tasks.
    assert!(list(&h, None, None, 7, 0)
        .await
        .iter()
        .all(|t| want.contains(&t.task_uuid)));
}

pub async fn transitions_are_oldest_first(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    for _ in 0..3 {
        h.clock.advance(1_000);
        let c = h.claim(NS, 10).await.remove(0);
        h.clock.advance(1_000);
        h.complete(vec![success(&c, json!(c.name))]).await;
    }
    let rows = h.store.task_transitions(task.task_uuid).await.unwrap();
    assert_eq!(rows.first().unwrap().event, "create");
    assert_eq!(rows.last().unwrap().to_state, "complete");
    assert!(
        rows.windows(2)
            .all(|w| w[0].transition_id < w[1].transition_id && w[0].created_at <= w[1].created_at),
        "{rows:#?}"
    );
    for s in &task.steps {
        let rows = h.store.step_transitions(s.step_uuid).await.unwrap();
        assert_eq!(rows.first().unwrap().event, "create");
        assert_eq!(rows.last().unwrap().to_state, "complete");
        assert!(rows
            .windows(2)
            .all(|w| w[0].transition_id < w[1].transition_id && w[0].created_at <= w[1].created_at));
    }
    // Step c's rows span the whole run: created at T0, completed last.
    let c_rows = h.store.step_transitions(step_uuid(&task, "c")).await.unwrap();
    assert_eq!(c_rows.first().unwrap().created_at, T0);
    assert_eq!(c_rows.last().unwrap().created_at, T0 + 6_000);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn unknown_uuids_read_as_none_or_empty(h: Harness) {
    h.create_one(linear(NS)).await;
    let nobody = Uuid::now_v7();
    assert!(h.store.task_get(nobody).await.unwrap().is_none());
    assert!(h.store.step_get(nobody).await.unwrap().is_none());
    assert!(h.store.task_transitions(nobody).await.unwrap().is_empty());
    assert!(h.store.step_transitions(nobody).await.unwrap().is_empty());
    assert!(h
        .store
        .task_evaluate_many(vec![nobody], h.now(), "conformance".into())
        .await
        .unwrap()
        .is_empty());
    assert!(h
        .store
        .step_lease_expired_list(h.now() + 3_600_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(list(&h, Some(TaskState::Cancelled), None, 10, 0).await.is_empty());
}

pub async fn a_claim_of_n_steps_costs_a_constant_number_of_statements(h: Harness) {
    h.create(vec![parallel(NS, 5), parallel(NS, 5), diamond(NS)]).await;
    let mut costs = Vec::new();
    for limit in [1, 4, 100] {
        let (statements, trips) = (h.store.statement_count(), h.store.round_trip_count());
        let claimed = h.claim(NS, limit).await;
        assert!(!claimed.is_empty());
        costs.push((
            claimed.len(),
            h.store.statement_count() - statements,
            h.store.round_trip_count() - trips,
        ));
    }
    assert_eq!(costs.iter().map(|c| c.0).collect::<Vec<_>>(), [1, 4, 6]);
    for (n, statements, trips) in &costs {
        assert!(*statements <= 3, "a claim of {n} steps cost {statements} statements");
        assert!(*trips <= 2, "a claim of {n} steps cost {trips} round trips");
        if h.store.backend() == Backend::Sqlite {
            // claim, resume tasks waiting for retry, hydrate: one script
            assert_eq!((*statements, *trips), (3, 1));
        }
    }
    let trips = h.store.round_trip_count();
    assert!(h.claim(NS, 100).await.is_empty());
    let empty = h.store.round_trip_count() - trips;
    assert!(empty <= 2, "an empty claim cost {empty} round trips");
}

pub async fn a_completion_batch_costs_a_constant_number_of_statements(h: Harness) {
    let tasks: Vec<NewTask> = (0..11).map(|_| linear(NS)).collect();
    h.create(tasks).await;
    let roots = h.claim(NS, 100).await;
    assert_eq!(roots.len(), 11);

    let cost = |before: (u64, u64)| {
        (
            h.store.statement_count() - before.0,
            h.store.round_trip_count() - before.1,
        )
    };
    let now = || (h.store.statement_count(), h.store.round_trip_count());
    // Successes with successors to enqueue and tasks to move on: the full path.
    let mut costs = Vec::new();
    for batch in [&roots[..1], &roots[1..]] {
        let before = now();
        let report = h.complete(batch.iter().map(|c| success(c, json!(1))).collect()).await;
        assert_eq!(report.applied.len(), batch.len());
        assert_eq!(report.enqueued.len(), batch.len());
        costs.push(cost(before));
    }
    // Failures that finish tasks (no successors to enqueue).
    let mids = h.claim(NS, 100).await;
    let before = now();
    let report = h.complete(mids.iter().map(fail).collect()).await;
    assert_eq!(report.tasks.len(), 11);
    costs.push(cost(before));
    // Only stale results: nothing to evaluate.
    let before = now();
    let report = h
        .complete(mids.iter().map(|c| success(c, json!("late"))).collect())
        .await;
    assert_eq!(report.rejected.len(), 11);
    costs.push(cost(before));

    assert!(
        costs.iter().all(|(statements, trips)| *statements <= 4 && *trips <= 5),
        "completion batches cost {costs:?} (statements, round trips)"
    );
    assert_eq!(costs[0], costs[1], "the cost does not grow with the batch size");
    if h.store.backend() == Backend::Sqlite {
        // script 1: apply results, enqueue successors, count steps per task;
        // script 2: move tasks (when any changes) and commit
        assert_eq!(costs, [(4, 2), (4, 2), (4, 2), (3, 2)]);
    } else {
        // BEGIN; lock the tasks; apply + enqueue + count (one statement); move tasks; COMMIT
        // (nothing to move when every result was stale)
        assert_eq!(costs, [(3, 5), (3, 5), (3, 5), (2, 4)]);
    }
}
