//! Decision and batch outcomes (`StepOutcome::Expand`): the steps they create, in
//! the transaction that records the result; convergence with intersection
//! semantics; refusals; idempotency; batch-worker checkpoints across a lost
//! lease and a retry.

use super::*;
use std::sync::Arc as StdArc;
use tasker_core::contract::{BatchOutcome, DecisionOutcome, DynamicOutcome};
use tasker_core::orchestration::task_request::{build_task, TemplateRef};
use tasker_core::orchestration::TaskSubmission;
use tasker_core::store::{ReleaseReason, StepHeartbeatParams, StepReleaseManyParams};
use tasker_core::template::parse_str;

/// check → route (decision) → auto | manager | finance → audit (after finance);
/// finish converges auto, manager and audit.
const APPROVAL: &str =
    "namespace: conformance\nname: approval\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
  - { name: check, handler: { callable: x } }\n\
  - { name: route, type: decision, dependencies: [check], handler: { callable: x } }\n\
  - { name: auto, dependencies: [route], handler: { callable: x } }\n\
  - { name: manager, dependencies: [route], handler: { callable: x } }\n\
  - { name: finance, dependencies: [route], handler: { callable: x } }\n\
  - { name: audit, dependencies: [finance], handler: { callable: x } }\n\
  - { name: finish, type: deferred_convergence, dependencies: [auto, manager, audit], handler: { callable: x } }\n";

/// analyze (batchable, 200 per batch, at most 6) → work_NNN → total (convergence).
const CSV: &str = "namespace: conformance\nname: csv\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
  - { name: analyze, type: batchable, handler: { callable: x }, batch_config: { batch_size: 200, max_batches: 6 } }\n\
  - { name: work, type: batch_worker, dependencies: [analyze], handler: { callable: x, initialization: { chunk: 50 } } }\n\
  - { name: total, type: deferred_convergence, dependencies: [work], handler: { callable: x } }\n";

fn task_of(yaml: &str) -> NewTask {
    let loaded = StdArc::new(parse_str(yaml, "<conformance>", None).expect("fixture template is valid"));
    build_task(
        &loaded,
        &TaskSubmission::new(TemplateRef::Loaded(loaded.clone()), json!({"amount": 10})),
    )
    .expect("fixture task builds")
}

fn expand(c: &ClaimedStep, outcome: DynamicOutcome) -> StepCompletion {
    let key = match &outcome {
        DynamicOutcome::Decision(_) => "decision_point_outcome",
        DynamicOutcome::Batch(_) => "batch_processing_outcome",
    };
    let inner = match &outcome {
        DynamicOutcome::Decision(d) => serde_json::to_value(d).unwrap(),
        DynamicOutcome::Batch(b) => serde_json::to_value(b).unwrap(),
    };
    let result = Value::Object([(key.to_string(), inner)].into_iter().collect());
    StepCompletion {
        step_uuid: c.step_uuid,
        claim_seq: c.claim_seq,
        outcome: StepOutcome::Expand { result, outcome },
        metadata: json!({"worker_id": "worker-1", "attempt": c.attempt}),
        events: vec![],
    }
}

fn choose(names: &[&str]) -> DynamicOutcome {
    DynamicOutcome::Decision(DecisionOutcome::CreateSteps {
        step_names: names.iter().map(|n| n.to_string()).collect(),
    })
}

fn batches(total: u64) -> DynamicOutcome {
    DynamicOutcome::Batch(BatchOutcome::CreateBatches {
        total_items: Some(total),
        batch_size: None,
        cursor_configs: None,
    })
}

/// Claims the one claimable step called `name` and succeeds it with `result`.
async fn run_step(h: &Harness, name: &str, result: Value) -> CompletionReport {
    let claimed = h.claim(NS, 100).await;
    let c = named(&claimed, name).clone();
    assert_eq!(claimed.len(), 1, "only {name} should be claimable: {claimed:?}");
    h.complete(vec![success(&c, result)]).await
}

/// Claims the one claimable step called `name`.
async fn claim_only(h: &Harness, name: &str) -> ClaimedStep {
    let claimed = h.claim(NS, 100).await;
    assert_eq!(claimed.len(), 1, "only {name} should be claimable: {claimed:?}");
    named(&claimed, name).clone()
}

fn names_and_states(t: &TaskView) -> Vec<(String, StepState)> {
    t.steps.iter().map(|s| (s.name.clone(), s.state)).collect()
}

fn st(name: &str, state: StepState) -> (String, StepState) {
    (name.to_string(), state)
}

async fn step_count(h: &Harness, task: Uuid) -> u32 {
    h.store
        .task_list(Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.task_uuid == task)
        .expect("task listed")
        .step_count
}

pub async fn a_decision_creates_its_branch_and_convergence_with_its_result(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    assert_eq!(step_count(&h, task.task_uuid).await, 2, "check and route only");
    run_step(&h, "check", json!({"ok": true})).await;
    let route = claim_only(&h, "route").await;
    let report = h.complete(vec![expand(&route, choose(&["manager"]))]).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].state, StepState::Complete);
    let view = h.task(task.task_uuid).await;
    assert_eq!(
        names_and_states(&view),
        [
            st("check", StepState::Complete),
            st("route", StepState::Complete),
            st("manager", StepState::Enqueued),
            st("finish", StepState::Pending),
        ]
    );
    let manager = view.steps[2].step_uuid;
    assert_eq!(
        report.enqueued.iter().map(|e| e.step_uuid).collect::<Vec<_>>(),
        [manager]
    );
    assert_eq!(step_count(&h, task.task_uuid).await, 4);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);
    // Created steps have their audit from creation on.
    assert_eq!(
        h.step_path(manager).await,
        [
            hop(None, "pending", "create"),
            hop(Some("pending"), "enqueued", "enqueue")
        ]
    );
    assert_eq!(
        h.step_path(view.steps[3].step_uuid).await,
        [hop(None, "pending", "create")]
    );

    run_step(&h, "manager", json!({"approved_by": "manager"})).await;
    let finish = claim_only(&h, "finish").await;
    assert_eq!(
        finish.dependency_results.keys().collect::<Vec<_>>(),
        ["manager", "route"],
        "the convergence sees the branch that ran and the decision"
    );
    assert_eq!(finish.dependency_results["manager"], json!({"approved_by": "manager"}));
    h.complete(vec![success(&finish, json!({"done": true}))]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_convergence_waits_only_for_the_branches_created(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    run_step(&h, "check", json!({})).await;
    let route = claim_only(&h, "route").await;
    h.complete(vec![expand(&route, choose(&["finance", "manager"]))]).await;
    let mut claimed = h.claim(NS, 100).await;
    claimed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        claimed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["finance", "manager"]
    );
    h.complete(vec![success(&claimed[1], json!("m"))]).await;
    let finish_state = |v: &TaskView| v.steps.iter().find(|s| s.name == "finish").map(|s| s.state);
    assert_eq!(finish_state(&h.task(task.task_uuid).await), Some(StepState::Pending));
    h.complete(vec![success(&claimed[0], json!("f"))]).await;
    assert_eq!(
        finish_state(&h.task(task.task_uuid).await),
        Some(StepState::Pending),
        "audit, after finance, is still to run"
    );
    run_step(&h, "audit", json!("a")).await;
    let finish = claim_only(&h, "finish").await;
    assert_eq!(
        finish.dependency_results.keys().collect::<Vec<_>>(),
        ["audit", "manager", "route"]
    );
    assert!(
        !h.task(task.task_uuid).await.steps.iter().any(|s| s.name == "auto"),
        "a branch not chosen is never created"
    );
    h.complete(vec![success(&finish, json!({}))]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn no_branches_creates_nothing_and_the_task_completes(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    run_step(&h, "check", json!({})).await;
    let route = claim_only(&h, "route").await;
    let report = h
        .complete(vec![expand(
            &route,
            DynamicOutcome::Decision(DecisionOutcome::NoBranches {}),
        )])
        .await;
    assert!(report.enqueued.is_empty());
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_eq!(h.task(task.task_uuid).await.steps.len(), 2);
    assert_eq!(step_count(&h, task.task_uuid).await, 2);
}

pub async fn an_undeclared_branch_fails_the_decision_and_creates_nothing(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    run_step(&h, "check", json!({})).await;
    let route = claim_only(&h, "route").await;
    let report = h.complete(vec![expand(&route, choose(&["manager", "ghost"]))]).await;
    assert_eq!(report.applied[0].state, StepState::Error);
    assert!(report.enqueued.is_empty());
    let view = h.step(route.step_uuid).await;
    let error = view.error.expect("the failure is recorded");
    assert_eq!(error["error_type"], "invalid_decision");
    assert_eq!(error["retryable"], false);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`ghost`, which is not a step of template"),
        "{error}"
    );
    assert_eq!(view.result, None);
    assert_eq!(h.task(task.task_uuid).await.steps.len(), 2, "nothing created");
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Error);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn an_outcome_applied_twice_creates_its_steps_once(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    run_step(&h, "check", json!({})).await;
    let route = claim_only(&h, "route").await;
    let result = expand(&route, choose(&["auto"]));
    // Twice in one batch, then again in racing batches, then once more late.
    let (a, b) = tokio::join!(
        h.complete(vec![result.clone(), result.clone()]),
        h.complete(vec![result.clone()])
    );
    assert_eq!(a.applied.len() + b.applied.len(), 1, "{a:?} {b:?}");
    let late = h.complete(vec![result]).await;
    assert_eq!(late.rejected, [route.step_uuid]);
    let view = h.task(task.task_uuid).await;
    assert_eq!(
        view.steps.len(),
        4,
        "check, route, auto, finish: {:?}",
        names_and_states(&view)
    );
    assert_eq!(step_count(&h, task.task_uuid).await, 4);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

/// Two decisions at the start; `both` converges a branch of each.
const TWO_DECISIONS: &str =
    "namespace: conformance\nname: two\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n\
  - { name: d1, type: decision, handler: { callable: x } }\n\
  - { name: d2, type: decision, handler: { callable: x } }\n\
  - { name: a, dependencies: [d1], handler: { callable: x } }\n\
  - { name: b, dependencies: [d2], handler: { callable: x } }\n\
  - { name: both, type: deferred_convergence, dependencies: [a, b], handler: { callable: x } }\n";

pub async fn a_convergence_fed_by_two_decisions_waits_for_both_even_in_one_batch(h: Harness) {
    for same_batch in [true, false] {
        let task = task_of(TWO_DECISIONS);
        h.create_one(task.clone()).await;
        let mut ds = h.claim(NS, 10).await;
        ds.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(ds.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["d1", "d2"]);
        let (r1, r2) = (expand(&ds[0], choose(&["a"])), expand(&ds[1], choose(&["b"])));
        if same_batch {
            h.complete(vec![r1, r2]).await;
        } else {
            h.complete(vec![r1]).await;
            h.complete(vec![r2]).await;
        }
        let view = h.task(task.task_uuid).await;
        assert_eq!(
            names_and_states(&view),
            [
                st("d1", StepState::Complete),
                st("d2", StepState::Complete),
                st("a", StepState::Enqueued),
                st("both", StepState::Pending),
                st("b", StepState::Enqueued),
            ],
            "same batch: {same_batch}"
        );
        let branches = h.claim(NS, 10).await;
        h.complete(vec![success(named(&branches, "a"), json!("a"))]).await;
        let both = view.steps.iter().find(|s| s.name == "both").unwrap().step_uuid;
        assert_eq!(h.step_state(both).await, StepState::Pending, "both waits for b too");
        h.complete(vec![success(named(&branches, "b"), json!("b"))]).await;
        let both = claim_only(&h, "both").await;
        assert_eq!(
            both.dependency_results.keys().collect::<Vec<_>>(),
            ["a", "b", "d1", "d2"]
        );
        h.complete(vec![success(&both, json!({}))]).await;
        assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
        assert_audit_consistent(&h.store, task.task_uuid).await;
    }
}

pub async fn created_steps_can_be_claimed_eagerly_in_the_same_transaction(h: Harness) {
    let task = task_of(APPROVAL);
    h.create_one(task.clone()).await;
    run_step(&h, "check", json!({})).await;
    let route = claim_only(&h, "route").await;
    let report = h
        .complete_eager(vec![expand(&route, choose(&["auto"]))], &[NS], 1)
        .await;
    assert_eq!(report.claimed.len(), 1);
    assert_eq!(report.claimed[0].name, "auto");
    assert_eq!(
        report.claimed[0].dependency_results.keys().collect::<Vec<_>>(),
        ["route"]
    );
    assert!(report.enqueued.is_empty());
}

pub async fn a_batch_outcome_creates_workers_whose_results_the_convergence_receives(h: Harness) {
    let task = task_of(CSV);
    h.create_one(task.clone()).await;
    let analyze = claim_only(&h, "analyze").await;
    let report = h.complete(vec![expand(&analyze, batches(1000))]).await;
    assert_eq!(report.enqueued.len(), 5);
    assert_eq!(step_count(&h, task.task_uuid).await, 7);
    let mut workers = h.claim(NS, 100).await;
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["work_001", "work_002", "work_003", "work_004", "work_005"]);
    for (i, w) in workers.iter().enumerate() {
        assert_eq!(
            (w.template_step_name.as_str(), w.step_type.as_str()),
            ("work", "batch_worker")
        );
        assert_eq!(
            w.handler_initialization,
            json!({"chunk": 50, "cursor": {"batch_id": format!("{:03}", i + 1),
                "start_cursor": i * 200, "end_cursor": (i + 1) * 200}})
        );
    }
    let done: Vec<StepCompletion> = workers
        .iter()
        .map(|w| success(w, json!({"rows": 200, "batch": w.name})))
        .collect();
    h.complete(done).await;
    let total = claim_only(&h, "total").await;
    assert_eq!(total.dependency_results.len(), 6, "five batches and the analyzer");
    assert_eq!(
        total.dependency_results["work_004"],
        json!({"rows": 200, "batch": "work_004"})
    );
    h.complete(vec![success(&total, json!({"rows": 1000}))]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn no_batches_enqueues_the_convergence_at_once(h: Harness) {
    let task = task_of(CSV);
    h.create_one(task.clone()).await;
    let analyze = claim_only(&h, "analyze").await;
    let report = h
        .complete(vec![expand(
            &analyze,
            DynamicOutcome::Batch(BatchOutcome::NoBatches {}),
        )])
        .await;
    assert_eq!(report.enqueued.len(), 1);
    let total = claim_only(&h, "total").await;
    assert_eq!(total.dependency_results.keys().collect::<Vec<_>>(), ["analyze"]);
}

pub async fn more_batches_than_the_template_allows_fail_the_step(h: Harness) {
    let task = task_of(CSV);
    h.create_one(task.clone()).await;
    let analyze = claim_only(&h, "analyze").await;
    let report = h.complete(vec![expand(&analyze, batches(1201))]).await;
    assert_eq!(report.applied[0].state, StepState::Error);
    let error = h.step(analyze.step_uuid).await.error.unwrap();
    assert_eq!(error["error_type"], "too_many_batches");
    assert!(
        error["message"].as_str().unwrap().contains("max_batches (6)"),
        "{error}"
    );
    assert_eq!(h.task(task.task_uuid).await.steps.len(), 1);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Error);
}

async fn heartbeat(h: &Harness, c: &ClaimedStep, checkpoint: Value) {
    let deadline = h
        .store
        .step_heartbeat(StepHeartbeatParams {
            step_uuid: c.step_uuid,
            claim_seq: c.claim_seq,
            lease_expires_at: h.now() + LEASE_MS,
            deadline_at: None,
            checkpoint: Some(checkpoint),
            now: h.now(),
        })
        .await
        .expect("step_heartbeat");
    assert!(deadline.is_some(), "the claim is held");
}

pub async fn a_checkpoint_survives_a_lost_lease_and_a_retry(h: Harness) {
    let task = task_of(CSV);
    h.create_one(task.clone()).await;
    let analyze = claim_only(&h, "analyze").await;
    h.complete(vec![expand(&analyze, batches(200))]).await;
    let first = claim_only(&h, "work_001").await;
    assert_eq!(first.checkpoint, None);
    let saved = json!({"cursor": 80, "data": {"sum": 3160}, "saved_at_ms": h.now()});
    heartbeat(&h, &first, saved.clone()).await;

    // The worker is lost: its lease runs out and the sweep hands the step back.
    h.clock.advance(LEASE_MS + 1);
    h.store
        .step_release_many(StepReleaseManyParams {
            claims: vec![(first.step_uuid, first.claim_seq)],
            reason: ReleaseReason::LeaseExpired,
            now: h.now(),
            processor: "sweeper".into(),
        })
        .await
        .unwrap();
    let second = claim_only(&h, "work_001").await;
    assert_eq!(second.attempt, 1, "a lost lease does not count as an attempt");
    assert_eq!(second.checkpoint, Some(saved));

    // The next attempt checkpoints further, then fails and is retried.
    let further = json!({"cursor": 150, "data": {"sum": 11175}, "saved_at_ms": h.now()});
    heartbeat(&h, &second, further.clone()).await;
    h.complete(vec![retry_at(&second, h.now() + 1_000)]).await;
    h.clock.advance(1_000);
    let third = claim_only(&h, "work_001").await;
    assert_eq!(third.attempt, 2);
    assert_eq!(third.checkpoint, Some(further));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_heartbeat_adds_no_audit_rows(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let first = h.claim(NS, 1).await.remove(0);
    h.complete(vec![retry_at(&first, h.now())]).await;
    let retried = h.claim(NS, 1).await.remove(0);
    let before = h.step_path(retried.step_uuid).await;
    heartbeat(&h, &retried, json!({"cursor": 1, "data": null, "saved_at_ms": h.now()})).await;
    h.clock.advance(10);
    heartbeat(&h, &retried, json!({"cursor": 2, "data": null, "saved_at_ms": h.now()})).await;
    assert_eq!(h.step_path(retried.step_uuid).await, before);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}
