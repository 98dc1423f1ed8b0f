//! The dead-letter queue: the staleness sweep's write (`dlq_sweep`), its reads
//! (`dlq_list`, `dlq_get`, `dlq_open_count`) and an operator's resolutions
//! (`dlq_resolve`: retry, resolve or complete a step, after which the task resumes
//! and completes).

use super::*;
use tasker_core::contract::DomainEventMode;
use tasker_core::events::domain::DomainEvent;
use tasker_core::store::{
    DlqAction, DlqEntry, DlqListParams, DlqReason, DlqResolution, DlqResolveOutcome, DlqResolveParams, DlqStatus,
    DlqSweepParams, DlqSweepReport, StaleThresholds,
};
use tasker_core::store::{DomainEventPollParams, EventGate, PendingDomainEvent};

/// A step lease is lost this long after it ended.
const GRACE_MS: i64 = 1_000;
/// Every other rule's threshold, except `steps_in_process` and the lifetime.
const STALE_MS: i64 = 60_000;

fn thresholds() -> StaleThresholds {
    StaleThresholds {
        step_lease_grace_ms: Some(GRACE_MS),
        step_enqueued_ms: Some(STALE_MS),
        waiting_for_dependencies_ms: Some(STALE_MS),
        waiting_for_retry_ms: Some(STALE_MS),
        steps_in_process_ms: Some(10 * STALE_MS),
        blocked_ms: Some(STALE_MS),
        error_ms: Some(STALE_MS),
        max_lifetime_ms: Some(100 * STALE_MS),
    }
}

async fn sweep_with(store: &SharedStore, now: i64, processor: &str) -> DlqSweepReport {
    store
        .dlq_sweep(DlqSweepParams {
            thresholds: thresholds(),
            limit: 100,
            now,
            processor: processor.into(),
        })
        .await
        .expect("dlq_sweep")
}

async fn sweep(h: &Harness) -> DlqSweepReport {
    sweep_with(&h.store, h.now(), "sweeper").await
}

async fn resolve(h: &Harness, entry_id: Uuid, action: DlqAction) -> DlqResolveOutcome {
    h.store
        .dlq_resolve(DlqResolveParams {
            entry_id,
            action,
            note: Some("looked into it".into()),
            actor: "alice".into(),
            now: h.now(),
            processor: "operator".into(),
            events: vec![],
        })
        .await
        .expect("dlq_resolve")
}

async fn list(h: &Harness, status: Option<DlqStatus>) -> Vec<DlqEntry> {
    h.store
        .dlq_list(DlqListParams {
            status,
            ..DlqListParams::default()
        })
        .await
        .expect("dlq_list")
}

/// A task whose first step was claimed and never answered, recorded by a sweep
/// after its lease was lost. Returns the entry and the claim.
async fn stuck_on_first_step(h: &Harness, task: &NewTask) -> (DlqEntry, ClaimedStep) {
    h.create_one(task.clone()).await;
    let claim = h.claim(NS, 1).await.remove(0);
    h.clock.advance(LEASE_MS + GRACE_MS);
    let report = sweep(h).await;
    assert_eq!(report.recorded.len(), 1, "{report:?}");
    (report.recorded[0].clone(), claim)
}

pub async fn an_unclaimed_step_is_recorded_once_with_a_snapshot_and_held(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    assert!(sweep(&h).await.recorded.is_empty(), "nothing is stale yet");
    h.clock.advance(STALE_MS);
    let report = sweep(&h).await;
    assert_eq!(report.detected, vec![DlqReason::StepEnqueuedTooLong]);
    let e = &report.recorded[0];
    let step = step_uuid(&task, "only");
    assert_eq!((e.task_uuid, e.step_uuid), (task.task_uuid, Some(step)));
    assert_eq!(e.reason, DlqReason::StepEnqueuedTooLong);
    assert_eq!((e.status, e.resolution), (DlqStatus::Open, None));
    assert_eq!(
        (e.task_state, e.stale_state.as_str()),
        (TaskState::StepsInProcess, "enqueued")
    );
    assert_eq!(
        (e.stale_for_ms, e.threshold_ms, e.detected_at),
        (STALE_MS, STALE_MS, h.now())
    );
    assert_eq!((e.namespace.as_str(), e.detected_by.as_deref()), (NS, Some("sweeper")));
    assert_eq!(e.snapshot["task"]["task_uuid"], json!(task.task_uuid));
    assert_eq!(e.snapshot["task"]["state"], "steps_in_process");
    assert_eq!(e.snapshot["task"]["context"], task.context);
    assert_eq!(
        e.snapshot["steps"][0]["state"], "enqueued",
        "the snapshot is taken before the move"
    );
    assert_eq!(
        (
            &e.snapshot["steps"][0]["name"],
            &e.snapshot["steps"][0]["template_step_name"]
        ),
        (&json!("only"), &json!("only")),
        "the snapshot names each step's template step (where its declared events are)"
    );
    assert_eq!(h.step_state(step).await, StepState::Error);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::BlockedByFailures);
    assert_eq!(
        h.step_path(step).await.pop().unwrap(),
        hop(Some("enqueued"), "error", "dead_letter")
    );
    assert_eq!(
        h.task_path(task.task_uuid).await.pop().unwrap(),
        hop(Some("steps_in_process"), "blocked_by_failures", "dead_letter")
    );
    let audit = h.store.task_transitions(task.task_uuid).await.unwrap();
    let meta = audit.last().unwrap().metadata.clone().unwrap();
    assert_eq!(meta["reason"], "step_enqueued_too_long");
    assert_eq!(meta["entry_id"], json!(e.entry_id));
    assert_eq!(h.step(step).await.error.unwrap()["type"], "dead_letter");
    assert_audit_consistent(&h.store, task.task_uuid).await;
    assert!(h.claim(NS, 10).await.is_empty(), "a held task's steps are not claimed");

    h.clock.advance(10 * STALE_MS);
    assert!(
        sweep(&h).await.recorded.is_empty(),
        "an open entry is not recorded again"
    );
    assert_eq!(h.store.dlq_open_count().await.unwrap(), 1);
    assert_eq!(list(&h, Some(DlqStatus::Open)).await, vec![e.clone()]);
    assert!(list(&h, Some(DlqStatus::Resolved)).await.is_empty());
    assert_eq!(h.store.dlq_get(e.entry_id).await.unwrap().as_ref(), Some(e));
    assert_eq!(h.store.dlq_get(Uuid::now_v7()).await.unwrap(), None);
}

pub async fn a_lost_lease_is_recorded_and_the_late_result_rejected(h: Harness) {
    let task = single(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    assert_eq!(e.reason, DlqReason::StepLeaseLost);
    assert_eq!((e.stale_state.as_str(), e.stale_for_ms), ("in_progress", GRACE_MS));
    assert_eq!(e.snapshot["steps"][0]["claimed_by"], "worker-1");
    let report = h.complete(vec![success(&claim, json!("late"))]).await;
    assert_eq!(report.rejected, vec![claim.step_uuid]);
    assert_eq!(h.step_state(claim.step_uuid).await, StepState::Error);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn retry_step_resets_attempts_and_the_task_completes(h: Harness) {
    let task = linear(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    let outcome = resolve(
        &h,
        e.entry_id,
        DlqAction::RetryStep {
            step_uuid: claim.step_uuid,
        },
    )
    .await;
    let DlqResolveOutcome::Resolved {
        entry,
        step_state,
        task: moved,
        enqueued_namespaces,
        events_stored,
    } = outcome
    else {
        panic!("not resolved: {outcome:?}");
    };
    assert_eq!(step_state, StepState::Enqueued);
    assert_eq!(enqueued_namespaces, vec![NS.to_string()]);
    assert_eq!(events_stored, 0);
    assert_eq!(
        moved.map(|m| (m.from, m.to)),
        Some((TaskState::BlockedByFailures, TaskState::StepsInProcess))
    );
    assert_eq!(
        (entry.status, entry.resolution),
        (DlqStatus::Resolved, Some(DlqResolution::RetryStep))
    );
    assert_eq!(entry.resolution_step_uuid, Some(claim.step_uuid));
    assert_eq!(entry.resolution_note.as_deref(), Some("looked into it"));
    assert_eq!(
        (entry.resolved_by.as_deref(), entry.resolved_at),
        (Some("alice"), Some(h.now()))
    );
    let view = h.step(claim.step_uuid).await;
    assert_eq!((view.state, view.attempts), (StepState::Enqueued, 0));
    let path = h.step_path(claim.step_uuid).await;
    assert_eq!(
        path[path.len() - 2..],
        [
            hop(Some("error"), "pending", "reset_for_retry"),
            hop(Some("pending"), "enqueued", "enqueue"),
        ]
    );
    let again = h.claim(NS, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1, "attempts start over");
    h.complete(vec![success(&again[0], json!("a"))]).await;
    assert_eq!(h.run_all(NS).await, 2);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_eq!(h.store.dlq_open_count().await.unwrap(), 0);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn resolve_step_lets_its_successors_run_and_the_task_completes(h: Harness) {
    let task = diamond(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    let outcome = resolve(
        &h,
        e.entry_id,
        DlqAction::ResolveStep {
            step_uuid: claim.step_uuid,
        },
    )
    .await;
    assert!(
        matches!(&outcome, DlqResolveOutcome::Resolved { step_state: StepState::ResolvedManually, enqueued_namespaces, .. } if enqueued_namespaces == &vec![NS.to_string()]),
        "{outcome:?}"
    );
    assert_eq!(
        h.step_path(claim.step_uuid).await.pop().unwrap(),
        hop(Some("error"), "resolved_manually", "resolve_manually")
    );
    let audit = h.store.step_transitions(claim.step_uuid).await.unwrap();
    assert_eq!(audit.last().unwrap().metadata.as_ref().unwrap()["resolved_by"], "alice");
    assert_eq!(h.run_all(NS).await, 3, "b, c, then d");
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn complete_step_records_the_result_its_dependents_receive(h: Harness) {
    let task = linear(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    let result = json!({"supplied": "by hand", "n": 7});
    let outcome = resolve(
        &h,
        e.entry_id,
        DlqAction::CompleteStep {
            step_uuid: claim.step_uuid,
            result: result.clone(),
        },
    )
    .await;
    assert!(
        matches!(
            outcome,
            DlqResolveOutcome::Resolved {
                step_state: StepState::Complete,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(h.step(claim.step_uuid).await.result, Some(result.clone()));
    let b = h.claim(NS, 10).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].dependency_results.get("a"), Some(&result));
    h.complete(vec![success(&b[0], json!("b"))]).await;
    assert_eq!(h.run_all(NS).await, 1);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

/// Every durable event stored so far.
async fn stored_events(h: &Harness) -> Vec<tasker_core::events::domain::StoredDomainEvent> {
    h.store
        .domain_event_poll(DomainEventPollParams {
            consumer: "reader".into(),
            after: None,
            limit: 10,
            name_pattern: None,
        })
        .await
        .unwrap()
}

pub async fn a_resolution_writes_the_events_whose_gate_its_step_passes(h: Harness) {
    let task = linear(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    let event = |name: &str, gate: EventGate| PendingDomainEvent {
        event: DomainEvent {
            event_id: Uuid::now_v7(),
            name: name.into(),
            payload: json!({"by": "hand"}),
            mode: DomainEventMode::Durable,
            task_uuid: Some(task.task_uuid),
            step_uuid: Some(claim.step_uuid),
            step_name: Some("a".into()),
            namespace: Some(NS.into()),
            correlation_id: None,
            fired_at: h.now(),
        },
        gate,
    };
    let outcome = h
        .store
        .dlq_resolve(DlqResolveParams {
            entry_id: e.entry_id,
            action: DlqAction::CompleteStep {
                step_uuid: claim.step_uuid,
                result: json!({"by": "hand"}),
            },
            note: None,
            actor: "alice".into(),
            now: h.now(),
            processor: "operator".into(),
            events: vec![
                event("a.done", EventGate::Complete),
                event("a.failed", EventGate::Failed),
                event("a.ended", EventGate::Applied),
            ],
        })
        .await
        .unwrap();
    assert!(
        matches!(outcome, DlqResolveOutcome::Resolved { events_stored: 2, .. }),
        "{outcome:?}"
    );
    let stored = stored_events(&h).await;
    let names: Vec<&str> = stored.iter().map(|e| e.event.name.as_str()).collect();
    assert_eq!(names, ["a.done", "a.ended"]);
    // A refused resolution writes none.
    let again = h
        .store
        .dlq_resolve(DlqResolveParams {
            entry_id: e.entry_id,
            action: DlqAction::ResolveStep {
                step_uuid: claim.step_uuid,
            },
            note: None,
            actor: "bob".into(),
            now: h.now(),
            processor: "operator".into(),
            events: vec![event("a.twice", EventGate::Applied)],
        })
        .await
        .unwrap();
    assert!(matches!(again, DlqResolveOutcome::AlreadyResolved { .. }), "{again:?}");
    let after = stored_events(&h).await;
    assert_eq!(after.len(), 2);
}

pub async fn bad_resolutions_are_refused_and_change_nothing(h: Harness) {
    let task = linear(NS);
    let (e, claim) = stuck_on_first_step(&h, &task).await;
    assert_eq!(
        resolve(
            &h,
            Uuid::now_v7(),
            DlqAction::ResolveStep {
                step_uuid: claim.step_uuid
            }
        )
        .await,
        DlqResolveOutcome::NotFound
    );
    let stranger = Uuid::now_v7();
    assert_eq!(
        resolve(&h, e.entry_id, DlqAction::ResolveStep { step_uuid: stranger }).await,
        DlqResolveOutcome::StepNotInTask { step_uuid: stranger }
    );
    let other = single(NS);
    h.create_one(other.clone()).await;
    let foreign = step_uuid(&other, "only");
    assert_eq!(
        resolve(&h, e.entry_id, DlqAction::ResolveStep { step_uuid: foreign }).await,
        DlqResolveOutcome::StepNotInTask { step_uuid: foreign }
    );
    let b = step_uuid(&task, "b");
    assert_eq!(
        resolve(&h, e.entry_id, DlqAction::RetryStep { step_uuid: b }).await,
        DlqResolveOutcome::StepNotResolvable {
            step_uuid: b,
            state: StepState::Pending,
            resolution: DlqResolution::RetryStep,
        }
    );
    assert_eq!(
        list(&h, Some(DlqStatus::Open)).await,
        vec![e.clone()],
        "nothing changed"
    );
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::BlockedByFailures);
    let first = resolve(
        &h,
        e.entry_id,
        DlqAction::ResolveStep {
            step_uuid: claim.step_uuid,
        },
    )
    .await;
    assert!(matches!(first, DlqResolveOutcome::Resolved { .. }));
    let second = resolve(
        &h,
        e.entry_id,
        DlqAction::RetryStep {
            step_uuid: claim.step_uuid,
        },
    )
    .await;
    let DlqResolveOutcome::AlreadyResolved { entry } = second else {
        panic!("expected AlreadyResolved, got {second:?}");
    };
    assert_eq!(entry.resolution, Some(DlqResolution::ResolveStep));
    assert_eq!(h.step_state(claim.step_uuid).await, StepState::ResolvedManually);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn sweeps_running_at_once_record_each_task_once(h: Harness) {
    let tasks: Vec<NewTask> = (0..12).map(|_| single(NS)).collect();
    h.create(tasks.clone()).await;
    h.clock.advance(STALE_MS);
    let now = h.now();
    let sweeps: Vec<_> = (0..4)
        .map(|i| {
            let store = h.store.clone();
            tokio::spawn(async move { sweep_with(&store, now, &format!("sweeper-{i}")).await })
        })
        .collect();
    let mut recorded = Vec::new();
    for s in sweeps {
        recorded.extend(s.await.unwrap().recorded);
    }
    let mut per_task: Vec<Uuid> = recorded.iter().map(|e| e.task_uuid).collect();
    per_task.sort();
    let mut expected: Vec<Uuid> = tasks.iter().map(|t| t.task_uuid).collect();
    expected.sort();
    assert_eq!(per_task, expected, "every task recorded exactly once");
    assert_eq!(h.store.dlq_open_count().await.unwrap(), 12);
    assert_eq!(list(&h, None).await.len(), 12);
    let filtered = |reason, namespace: &str| {
        h.store.dlq_list(DlqListParams {
            reason: Some(reason),
            namespace: Some(namespace.to_string()),
            ..DlqListParams::default()
        })
    };
    assert_eq!(filtered(DlqReason::StepEnqueuedTooLong, NS).await.unwrap().len(), 12);
    assert!(filtered(DlqReason::StepLeaseLost, NS).await.unwrap().is_empty());
    assert!(filtered(DlqReason::StepEnqueuedTooLong, "elsewhere")
        .await
        .unwrap()
        .is_empty());
    let page = h
        .store
        .dlq_list(DlqListParams {
            limit: 5,
            offset: 10,
            ..DlqListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2, "the last page of twelve");
    for t in &tasks {
        assert_eq!(h.task_state(t.task_uuid).await, TaskState::BlockedByFailures);
        assert_audit_consistent(&h.store, t.task_uuid).await;
    }
}

pub async fn a_task_waiting_too_long_is_held_and_a_template_can_allow_longer(h: Harness) {
    let task = single(NS);
    let mut patient = single(NS);
    patient.template.content_hash = format!("conformance:{NS}/patient@1.0.0");
    patient.template.name = "patient".into();
    patient.template.definition["lifecycle"] = json!({"max_waiting_for_retry_minutes": 60});
    h.create(vec![task.clone(), patient.clone()]).await;
    let claimed = h.claim(NS, 10).await;
    let far = h.now() + 1_000 * STALE_MS;
    h.complete(claimed.iter().map(|c| retry_at(c, far)).collect()).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::WaitingForRetry);
    h.clock.advance(STALE_MS);
    let report = sweep(&h).await;
    assert_eq!(
        report.recorded.len(),
        1,
        "the template allows the other task an hour: {report:?}"
    );
    let e = &report.recorded[0];
    assert_eq!((e.task_uuid, e.step_uuid), (task.task_uuid, None));
    assert_eq!(e.reason, DlqReason::WaitingForRetryTooLong);
    assert_eq!(e.stale_state, "waiting_for_retry");
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::BlockedByFailures);
    assert_eq!(h.task_state(patient.task_uuid).await, TaskState::WaitingForRetry);
    let step = step_uuid(&task, "only");
    assert_eq!(
        h.step_state(step).await,
        StepState::WaitingForRetry,
        "a task-level entry moves no step"
    );
    let outcome = resolve(&h, e.entry_id, DlqAction::RetryStep { step_uuid: step }).await;
    assert!(
        matches!(
            outcome,
            DlqResolveOutcome::Resolved {
                step_state: StepState::Enqueued,
                ..
            }
        ),
        "{outcome:?}"
    );
    let ran = h.claim(NS, 10).await;
    assert_eq!(ran.iter().map(|c| c.step_uuid).collect::<Vec<_>>(), vec![step]);
    h.complete(vec![success(&ran[0], json!(1))]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_failed_task_is_recorded_in_error_and_reopened_by_its_resolution(h: Harness) {
    let task = linear(NS);
    h.create_one(task.clone()).await;
    let a = h.claim(NS, 1).await.remove(0);
    h.complete(vec![fail(&a)]).await;
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Error);
    h.clock.advance(STALE_MS);
    let report = sweep(&h).await;
    let e = &report.recorded[0];
    assert_eq!((e.reason, e.task_state), (DlqReason::ErrorUnresolved, TaskState::Error));
    let before = h.task_path(task.task_uuid).await;
    assert_eq!(before.last().unwrap().1, "error", "an errored task stays where it is");
    let outcome = resolve(
        &h,
        e.entry_id,
        DlqAction::CompleteStep {
            step_uuid: a.step_uuid,
            result: json!("fixed"),
        },
    )
    .await;
    let DlqResolveOutcome::Resolved { task: moved, .. } = outcome else {
        panic!("not resolved: {outcome:?}");
    };
    assert_eq!(
        moved.map(|m| (m.from, m.to)),
        Some((TaskState::Error, TaskState::StepsInProcess))
    );
    let path = h.task_path(task.task_uuid).await;
    assert_eq!(path[before.len()], hop(Some("error"), "evaluating_results", "reopen"));
    assert_eq!(h.run_all(NS).await, 2);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn an_entry_whose_task_finished_meanwhile_is_closed_by_the_next_sweep(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    h.clock.advance(STALE_MS);
    let e = sweep(&h).await.recorded.remove(0);
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::BlockedByFailures);
    // The task finishes without the DLQ (here an operator cancels it): nothing is left
    // to resolve, and the next sweep closes the entry.
    let cancelled = h
        .store
        .task_cancel(task.task_uuid, None, h.now(), "operator".into())
        .await
        .unwrap();
    assert!(matches!(
        cancelled,
        tasker_core::store::TaskCancelOutcome::Cancelled { .. }
    ));
    h.clock.advance(1);
    let report = sweep(&h).await;
    assert_eq!((report.closed, report.recorded.len()), (1, 0));
    let closed = h.store.dlq_get(e.entry_id).await.unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.resolution),
        (DlqStatus::Resolved, Some(DlqResolution::TaskFinished))
    );
    assert_eq!(
        (closed.resolved_by.as_deref(), closed.resolved_at),
        (Some("staleness sweep"), Some(h.now()))
    );
    assert_eq!(h.store.dlq_open_count().await.unwrap(), 0);
    assert_eq!(sweep(&h).await.closed, 0, "closed once");
}
