//! Leases: extension, expiry listing, and handing claims back.

use super::*;
use tasker_core::store::{ExpiredClaim, ReleaseReason, StepLeaseExtendManyParams, StepReleaseManyParams};

async fn expired_at(h: &Harness, now: i64) -> Vec<ExpiredClaim> {
    h.store
        .step_lease_expired_list(now, 100)
        .await
        .expect("step_lease_expired_list")
}

async fn extend(h: &Harness, claims: Vec<(Uuid, i64)>, lease_expires_at: i64) -> u64 {
    h.store
        .step_lease_extend_many(StepLeaseExtendManyParams {
            claims,
            lease_expires_at,
            now: h.now(),
        })
        .await
        .expect("step_lease_extend_many")
}

async fn release(h: &Harness, claims: Vec<(Uuid, i64)>, reason: ReleaseReason) -> Vec<Uuid> {
    h.store
        .step_release_many(StepReleaseManyParams {
            claims,
            reason,
            now: h.now(),
            processor: "conformance".into(),
        })
        .await
        .expect("step_release_many")
}

pub async fn extending_moves_the_lease_but_never_past_the_deadline(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    assert_eq!((c.lease_expires_at, c.deadline_at), (T0 + LEASE_MS, T0 + TIMEOUT_MS));
    assert_eq!(
        expired_at(&h, T0 + LEASE_MS + 1).await.len(),
        1,
        "without an extension the lease ends"
    );

    h.clock.advance(10_000);
    assert_eq!(extend(&h, vec![(c.step_uuid, c.claim_seq)], T0 + 45_000).await, 1);
    assert!(
        expired_at(&h, T0 + 45_000).await.is_empty(),
        "the lease now runs until +45s"
    );
    let e = expired_at(&h, T0 + 45_001).await;
    assert_eq!(e.len(), 1);
    assert!(!e[0].past_deadline);

    // Asking for more than the deadline allows gets the deadline.
    assert_eq!(extend(&h, vec![(c.step_uuid, c.claim_seq)], T0 + 600_000).await, 1);
    assert!(expired_at(&h, T0 + TIMEOUT_MS).await.is_empty());
    let e = expired_at(&h, T0 + TIMEOUT_MS + 1).await;
    assert_eq!(e.len(), 1, "the lease was capped at the deadline");
    assert!(e[0].past_deadline);

    // The extension changed no state and wrote no audit row.
    assert_eq!(h.step_state(c.step_uuid).await, StepState::InProgress);
    assert_eq!(h.step_path(c.step_uuid).await.len(), 3);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn extending_ignores_stale_claims(h: Harness) {
    let task = parallel(NS, 2);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let (p0, p1) = (named(&claimed, "p0"), named(&claimed, "p1"));
    h.complete(vec![success(p1, json!(1))]).await;

    let n = extend(
        &h,
        vec![
            (p0.step_uuid, p0.claim_seq + 1),
            (p0.step_uuid, p0.claim_seq - 1),
            (p1.step_uuid, p1.claim_seq),
        ],
        T0 + 50_000,
    )
    .await;
    assert_eq!(n, 0, "wrong claim numbers and finished steps are not extended");
    assert_eq!(extend(&h, vec![(Uuid::now_v7(), 1)], T0 + 50_000).await, 0);
    let e = expired_at(&h, T0 + LEASE_MS + 1).await;
    assert_eq!(
        e.iter().map(|x| x.step_uuid).collect::<Vec<_>>(),
        [p0.step_uuid],
        "p0's lease did not move"
    );
    assert_eq!(h.step_state(p1.step_uuid).await, StepState::Complete);
    assert_eq!(extend(&h, vec![], T0 + 50_000).await, 0);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn the_expired_list_holds_only_in_progress_steps_whose_lease_ended(h: Harness) {
    let task = parallel(NS, 4);
    let other = single("elsewhere");
    h.create(vec![task.clone(), other.clone()]).await;
    let claimed = h.claim(NS, 3).await; // one step stays enqueued
    h.complete(vec![success(&claimed[0], json!("done"))]).await;
    let mut failed_claim = h.claim("elsewhere", 1).await;
    h.complete(vec![retry_at(&failed_claim.remove(0), T0 + 1_000)]).await;

    assert!(
        expired_at(&h, T0 + LEASE_MS - 1).await.is_empty(),
        "leases still running"
    );
    assert!(
        expired_at(&h, T0 + LEASE_MS).await.is_empty(),
        "a lease ending exactly now has not expired"
    );
    let later = T0 + LEASE_MS + 1;
    let mut e = expired_at(&h, later).await;
    e.sort_by_key(|x| x.step_uuid);
    let mut want: Vec<&ClaimedStep> = claimed[1..].iter().collect();
    want.sort_by_key(|c| c.step_uuid);
    assert_eq!(e.len(), 2, "only the two in_progress steps: {e:?}");
    for (x, c) in e.iter().zip(want) {
        assert_eq!(x.step_uuid, c.step_uuid);
        assert_eq!(x.task_uuid, task.task_uuid);
        assert_eq!(x.namespace, NS);
        assert_eq!(x.claim_seq, c.claim_seq);
        assert_eq!(x.attempt, 1);
        assert_eq!(x.retry.max_attempts, 3);
        assert!(!x.past_deadline);
    }
    assert_eq!(
        h.store.step_lease_expired_list(later, 1).await.unwrap().len(),
        1,
        "the limit holds"
    );
    // Listing is a read: nothing moved.
    for c in &claimed[1..] {
        assert_eq!(h.step_state(c.step_uuid).await, StepState::InProgress);
    }
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn the_expired_list_flags_claims_past_their_deadline(h: Harness) {
    let mut task = new_task(NS, "deadlines", &[("quick", &[]), ("slow", &[])]);
    task.steps[0].timeout_ms = 10_000; // lease = deadline = +10s
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let quick = named(&claimed, "quick");
    let slow = named(&claimed, "slow");

    let e = expired_at(&h, T0 + 10_001).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].step_uuid, quick.step_uuid);
    assert!(e[0].past_deadline, "quick's attempt timed out");

    let mut e = expired_at(&h, T0 + LEASE_MS + 1).await;
    assert_eq!(e.len(), 2);
    e.sort_by_key(|x| x.step_uuid != quick.step_uuid);
    assert!(e[0].past_deadline);
    assert_eq!(e[1].step_uuid, slow.step_uuid);
    assert!(!e[1].past_deadline, "slow only lost its lease; its deadline is +60s");
    assert!(expired_at(&h, T0 + TIMEOUT_MS + 1)
        .await
        .iter()
        .all(|x| x.past_deadline));
}

pub async fn a_released_step_is_enqueued_again_without_burning_an_attempt(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    h.clock.advance(100);
    let released = release(&h, vec![(c.step_uuid, c.claim_seq)], ReleaseReason::Released).await;
    assert_eq!(released, [c.step_uuid]);
    let view = h.step(c.step_uuid).await;
    assert_eq!(view.state, StepState::Enqueued);
    assert_eq!(view.attempts, 0, "a released attempt is not counted");
    assert_eq!(
        h.step_path(c.step_uuid).await.last().unwrap(),
        &hop(Some("in_progress"), "enqueued", "release")
    );
    assert!(
        expired_at(&h, T0 + 3_600_000).await.is_empty(),
        "a released step holds no lease"
    );
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::StepsInProcess);

    let again = h.claim(NS, 1).await;
    assert_eq!(again.len(), 1, "claimable again at once");
    assert_eq!((again[0].attempt, again[0].claim_seq), (1, 2));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn an_expired_lease_returns_the_step_without_burning_an_attempt(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c1 = h.claim(NS, 1).await.remove(0);
    h.complete(vec![retry_at(&c1, h.now() + 1_000)]).await;
    h.clock.advance(1_000);
    let c2 = h.claim(NS, 1).await.remove(0);
    assert_eq!(c2.attempt, 2);

    h.clock.advance(LEASE_MS + 1);
    let expired = expired_at(&h, h.now()).await;
    assert_eq!(expired.len(), 1);
    assert_eq!((expired[0].claim_seq, expired[0].attempt), (c2.claim_seq, 2));
    let released = release(
        &h,
        vec![(expired[0].step_uuid, expired[0].claim_seq)],
        ReleaseReason::LeaseExpired,
    )
    .await;
    assert_eq!(released, [c2.step_uuid]);
    let view = h.step(c2.step_uuid).await;
    assert_eq!(view.state, StepState::Enqueued);
    assert_eq!(view.attempts, 1, "the expired attempt is given back");
    assert_eq!(
        h.step_path(c2.step_uuid).await.last().unwrap(),
        &hop(Some("in_progress"), "enqueued", "lease_expired")
    );
    assert!(expired_at(&h, h.now()).await.is_empty(), "no longer listed");

    let c3 = h.claim(NS, 1).await.remove(0);
    assert_eq!((c3.attempt, c3.claim_seq), (2, 3));
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_result_after_a_release_is_rejected(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let old = h.claim(NS, 1).await.remove(0);
    h.clock.advance(LEASE_MS + 1);
    release(&h, vec![(old.step_uuid, old.claim_seq)], ReleaseReason::LeaseExpired).await;

    // The lost worker reports while the step waits in the queue ...
    let report = h.complete(vec![success(&old, json!("late"))]).await;
    assert_eq!(report.rejected, [old.step_uuid]);
    assert!(report.applied.is_empty());
    assert_eq!(h.step_state(old.step_uuid).await, StepState::Enqueued);

    // ... and while another worker holds it.
    let new = h.claim_as(NS, 1, "worker-2").await.remove(0);
    let report = h.complete(vec![success(&old, json!("late")), fail(&old)]).await;
    assert_eq!(report.rejected, [old.step_uuid, old.step_uuid]);
    assert_eq!(h.step_state(new.step_uuid).await, StepState::InProgress);
    assert_eq!(h.step(new.step_uuid).await.result, None);

    let report = h.complete(vec![success(&new, json!("on time"))]).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(h.step(new.step_uuid).await.result, Some(json!("on time")));
    assert_eq!(h.task_state(task.task_uuid).await, TaskState::Complete);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn releasing_a_stale_claim_changes_nothing(h: Harness) {
    let task = parallel(NS, 2);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 10).await;
    let (p0, p1) = (named(&claimed, "p0"), named(&claimed, "p1"));
    h.complete(vec![success(p1, json!(1))]).await;
    let audit_p0 = h.store.step_transitions(p0.step_uuid).await.unwrap();
    let audit_p1 = h.store.step_transitions(p1.step_uuid).await.unwrap();

    for reason in [ReleaseReason::Released, ReleaseReason::LeaseExpired] {
        let released = release(
            &h,
            vec![
                (p0.step_uuid, p0.claim_seq + 1),
                (p1.step_uuid, p1.claim_seq),
                (Uuid::now_v7(), 1),
            ],
            reason,
        )
        .await;
        assert!(released.is_empty(), "{released:?}");
    }
    assert!(release(&h, vec![], ReleaseReason::Released).await.is_empty());
    assert_eq!(h.step(p0.step_uuid).await.attempts, 1);
    assert_eq!(h.step_state(p0.step_uuid).await, StepState::InProgress);
    assert_eq!(h.step_state(p1.step_uuid).await, StepState::Complete);
    assert_eq!(h.store.step_transitions(p0.step_uuid).await.unwrap(), audit_p0);
    assert_eq!(h.store.step_transitions(p1.step_uuid).await.unwrap(), audit_p1);
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn a_release_racing_a_result_lets_exactly_one_win(h: Harness) {
    // The sweeper returns expired claims while their late results arrive: for each
    // step exactly one of the two takes effect.
    let task = parallel(NS, 20);
    h.create_one(task.clone()).await;
    let claimed = h.claim(NS, 100).await;
    h.clock.advance(LEASE_MS + 1);
    let barrier = Arc::new(tokio::sync::Barrier::new(2 * claimed.len()));
    let mut releases = Vec::new();
    let mut results = Vec::new();
    for c in &claimed {
        let (store, gate, now, claim) = (h.store.clone(), barrier.clone(), h.now(), (c.step_uuid, c.claim_seq));
        releases.push(tokio::spawn(async move {
            gate.wait().await;
            let p = StepReleaseManyParams {
                claims: vec![claim],
                reason: ReleaseReason::LeaseExpired,
                now,
                processor: "sweeper".into(),
            };
            store.step_release_many(p).await.expect("release")
        }));
        let (store, gate, now, done) = (h.store.clone(), barrier.clone(), h.now(), success(c, json!("late")));
        results.push(tokio::spawn(async move {
            gate.wait().await;
            let p = StepCompleteManyParams {
                eager: None,
                completions: vec![done],
                now,
                processor: "results".into(),
            };
            store.step_complete_many(p).await.expect("complete")
        }));
    }
    for (c, (r, s)) in claimed.iter().zip(releases.into_iter().zip(results)) {
        let released = !r.await.unwrap().is_empty();
        let applied = !s.await.unwrap().applied.is_empty();
        assert!(
            released != applied,
            "step {}: released {released}, result applied {applied}",
            c.name
        );
        let view = h.step(c.step_uuid).await;
        if released {
            assert_eq!((view.state, view.attempts, view.result), (StepState::Enqueued, 0, None));
        } else {
            assert_eq!((view.state, view.result), (StepState::Complete, Some(json!("late"))));
        }
    }
    assert_audit_consistent(&h.store, task.task_uuid).await;
}

pub async fn extending_never_shortens_a_lease(h: Harness) {
    // A heartbeat computed from a lagging clock asks for an earlier end than the
    // lease already has: the lease stays where it was.
    let task = single(NS);
    h.create_one(task.clone()).await;
    let c = h.claim(NS, 1).await.remove(0);
    assert_eq!(c.lease_expires_at, T0 + LEASE_MS);
    h.clock.advance(1_000);
    extend(&h, vec![(c.step_uuid, c.claim_seq)], T0 + 5_000).await;
    assert!(
        expired_at(&h, T0 + LEASE_MS).await.is_empty(),
        "the lease was moved backwards"
    );
    assert_eq!(expired_at(&h, T0 + LEASE_MS + 1).await.len(), 1);
}
