//! The Store conformance suite: behaviour every `Store` backend must show.
//!
//! A backend's test file builds a factory (`async fn() -> Harness`) and calls
//! [`conformance_suite!`]; each case becomes one `#[tokio::test]` named
//! `<area>::<case>` in that backend's test binary (`store_sqlite`, `store_postgres`),
//! so a failure names both the case and the backend. Cases take only a [`Harness`]:
//! they talk to the store through the `Store` trait and take every time from the
//! harness's manual clock (time is moved by hand, never slept through).

pub mod audit;
pub mod dlq;
pub mod domain_events;
pub mod dynamic;
pub mod lease;
pub mod reads;
pub mod step_claim;
pub mod step_complete;
pub mod task_cancel;
pub mod task_create;
pub mod template;

use serde_json::{json, Value};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use tasker_core::clock::{Clock, ManualClock};
use tasker_core::state::{StepState, TaskState};
use tasker_core::store::{
    ClaimedStep, CompletionReport, EagerClaim, NewStep, NewTask, SharedStore, StepClaimReadyManyParams,
    StepCompleteManyParams, StepCompletion, StepOutcome, StepView, TaskChange, TaskCreateManyParams, TaskCreated,
    TaskView, TemplateRecord, TransitionRecord,
};
use tasker_core::template::RetryPolicy;
use uuid::Uuid;

/// The namespace most cases work in.
pub const NS: &str = "conformance";

/// Where the manual clock starts (2023-11-14T22:13:20Z).
pub const T0: i64 = 1_700_000_000_000;

/// Default per-attempt timeout of fixture steps.
pub const TIMEOUT_MS: i64 = 60_000;

/// Default lease of fixture claims.
pub const LEASE_MS: i64 = 30_000;

/// A fresh, empty store and the clock to drive it with.
pub struct Harness {
    /// The store under test (a fresh database per case).
    pub store: SharedStore,
    /// The only source of time in a case.
    pub clock: Arc<ManualClock>,
    /// Keeps the database alive (a temp dir, a scratch schema, ...).
    _guard: Box<dyn Any + Send>,
}

impl Harness {
    /// A harness over `store`; `guard` is dropped with the harness.
    pub fn new(store: SharedStore, clock: Arc<ManualClock>, guard: Box<dyn Any + Send>) -> Self {
        Self {
            store,
            clock,
            _guard: guard,
        }
    }

    /// The clock's reading.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Creates tasks at the clock's time.
    pub async fn create(&self, tasks: Vec<NewTask>) -> Vec<TaskCreated> {
        self.store
            .task_create_many(TaskCreateManyParams {
                tasks,
                now: self.now(),
                processor: "conformance".into(),
            })
            .await
            .expect("task_create_many")
    }

    /// Creates one task and checks it was created.
    pub async fn create_one(&self, task: NewTask) -> TaskCreated {
        let created = self.create(vec![task]).await;
        assert_eq!(created.len(), 1);
        assert!(created[0].created, "fixture task should be new: {:?}", created[0]);
        created.into_iter().next().unwrap()
    }

    /// Claims up to `limit` steps of `ns` with the default lease.
    pub async fn claim(&self, ns: &str, limit: u32) -> Vec<ClaimedStep> {
        self.claim_as(ns, limit, "worker-1").await
    }

    /// Claims up to `limit` steps of `ns` as `worker`.
    pub async fn claim_as(&self, ns: &str, limit: u32, worker: &str) -> Vec<ClaimedStep> {
        self.store
            .step_claim_ready_many(StepClaimReadyManyParams {
                namespace: ns.into(),
                limit,
                now: self.now(),
                lease_ms: LEASE_MS,
                worker_id: worker.into(),
            })
            .await
            .expect("step_claim_ready_many")
    }

    /// Applies results at the clock's time.
    pub async fn complete(&self, completions: Vec<StepCompletion>) -> CompletionReport {
        self.store
            .step_complete_many(StepCompleteManyParams {
                eager: None,
                completions,
                now: self.now(),
                processor: "conformance".into(),
            })
            .await
            .expect("step_complete_many")
    }

    /// Applies results and eagerly claims up to `limit` successors in `namespaces`.
    pub async fn complete_eager(
        &self,
        completions: Vec<StepCompletion>,
        namespaces: &[&str],
        limit: u32,
    ) -> CompletionReport {
        self.store
            .step_complete_many(StepCompleteManyParams {
                eager: Some(EagerClaim {
                    namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
                    limit,
                    lease_ms: LEASE_MS,
                    worker_id: "eager".into(),
                }),
                completions,
                now: self.now(),
                processor: "conformance".into(),
            })
            .await
            .expect("step_complete_many")
    }

    /// A task's view (it must exist).
    pub async fn task(&self, task_uuid: Uuid) -> TaskView {
        self.store
            .task_get(task_uuid)
            .await
            .expect("task_get")
            .expect("task exists")
    }

    /// A task's state.
    pub async fn task_state(&self, task_uuid: Uuid) -> TaskState {
        self.task(task_uuid).await.state
    }

    /// A step's view (it must exist).
    pub async fn step(&self, step_uuid: Uuid) -> StepView {
        self.store
            .step_get(step_uuid)
            .await
            .expect("step_get")
            .expect("step exists")
    }

    /// A step's state.
    pub async fn step_state(&self, step_uuid: Uuid) -> StepState {
        self.step(step_uuid).await.state
    }

    /// The audit of a step as (from, to, event) triples.
    pub async fn step_path(&self, step_uuid: Uuid) -> Vec<(Option<String>, String, String)> {
        path(&self.store.step_transitions(step_uuid).await.expect("step_transitions"))
    }

    /// The audit of a task as (from, to, event) triples.
    pub async fn task_path(&self, task_uuid: Uuid) -> Vec<(Option<String>, String, String)> {
        path(&self.store.task_transitions(task_uuid).await.expect("task_transitions"))
    }

    /// Claims and succeeds every step of `ns` until nothing is claimable; returns
    /// how many steps ran.
    pub async fn run_all(&self, ns: &str) -> usize {
        let mut ran = 0;
        loop {
            let claimed = self.claim(ns, 100).await;
            if claimed.is_empty() {
                return ran;
            }
            ran += claimed.len();
            let done: Vec<StepCompletion> = claimed.iter().map(|c| success(c, json!({"step": c.name}))).collect();
            self.complete(done).await;
        }
    }
}

fn path(rows: &[TransitionRecord]) -> Vec<(Option<String>, String, String)> {
    rows.iter()
        .map(|r| (r.from_state.clone(), r.to_state.clone(), r.event.clone()))
        .collect()
}

/// One expected audit hop: `hop(Some("pending"), "enqueued", "enqueue")`.
pub fn hop(from: Option<&str>, to: &str, event: &str) -> (Option<String>, String, String) {
    (from.map(String::from), to.to_string(), event.to_string())
}

/// A success result for a claim.
pub fn success(c: &ClaimedStep, result: Value) -> StepCompletion {
    StepCompletion {
        step_uuid: c.step_uuid,
        claim_seq: c.claim_seq,
        outcome: StepOutcome::Complete { result },
        metadata: json!({"worker_id": "worker-1"}),
        events: vec![],
    }
}

/// A retryable failure for a claim, claimable again at `ready_at`.
pub fn retry_at(c: &ClaimedStep, ready_at: i64) -> StepCompletion {
    StepCompletion {
        step_uuid: c.step_uuid,
        claim_seq: c.claim_seq,
        outcome: StepOutcome::RetryAt {
            error: json!({"message": "try again", "attempt": c.attempt}),
            ready_at,
        },
        metadata: json!({}),
        events: vec![],
    }
}

/// A permanent failure for a claim.
pub fn fail(c: &ClaimedStep) -> StepCompletion {
    StepCompletion {
        step_uuid: c.step_uuid,
        claim_seq: c.claim_seq,
        outcome: StepOutcome::Fail {
            error: json!({"message": "boom", "type": "PermanentError"}),
        },
        metadata: json!({}),
        events: vec![],
    }
}

/// The claimed step called `name` (it must be there).
pub fn named<'a>(claimed: &'a [ClaimedStep], name: &str) -> &'a ClaimedStep {
    claimed.iter().find(|c| c.name == name).unwrap_or_else(|| {
        panic!(
            "step `{name}` not among claimed {:?}",
            claimed.iter().map(|c| &c.name).collect::<Vec<_>>()
        )
    })
}

/// Steps of a fixture task by name.
pub fn step_uuid(task: &NewTask, name: &str) -> Uuid {
    task.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step `{name}`"))
        .step_uuid
}

/// A task of template `ns/template@1.0.0` with `steps` given as (name, parents).
/// Its identity is unique (the task uuid); tests change fields as they need.
pub fn new_task(ns: &str, template: &str, steps: &[(&str, &[&str])]) -> NewTask {
    let task_uuid = Uuid::now_v7();
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
    let definition = json!({
        "namespace": ns, "name": template, "version": "1.0.0",
        "steps": steps.iter().map(|(n, p)| json!({"name": n, "dependencies": p})).collect::<Vec<_>>(),
    });
    NewTask {
        task_uuid,
        template: TemplateRecord {
            content_hash: format!("conformance:{ns}/{template}@1.0.0"),
            namespace: ns.into(),
            name: template.into(),
            version: "1.0.0".into(),
            definition,
        },
        context: json!({"fixture": template}),
        identity_hash: task_uuid.to_string(),
        correlation_id: Uuid::now_v7(),
        priority: 0,
        hold_failed: false,
        steps: steps
            .iter()
            .map(|(name, parents)| NewStep {
                step_uuid: Uuid::now_v7(),
                name: name.to_string(),
                namespace: ns.into(),
                template_step_name: name.to_string(),
                step_type: "standard".into(),
                handler_callable: format!("handlers.{name}"),
                handler_method: "call".into(),
                handler_initialization: json!({"step": name}),
                retry: RetryPolicy {
                    max_attempts: 3,
                    ..RetryPolicy::default()
                },
                timeout_ms: TIMEOUT_MS,
                parents: parents
                    .iter()
                    .map(|p| *index.get(p).unwrap_or_else(|| panic!("no parent `{p}`")))
                    .collect(),
            })
            .collect(),
    }
}

/// One step, no parents.
pub fn single(ns: &str) -> NewTask {
    new_task(ns, "single", &[("only", &[])])
}

/// a → b → c.
pub fn linear(ns: &str) -> NewTask {
    new_task(ns, "linear", &[("a", &[]), ("b", &["a"]), ("c", &["b"])])
}

/// a → (b, c) → d.
pub fn diamond(ns: &str) -> NewTask {
    new_task(
        ns,
        "diamond",
        &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])],
    )
}

/// `n` independent root steps `p0..pn`.
pub fn parallel(ns: &str, n: usize) -> NewTask {
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let steps: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
    new_task(ns, &format!("parallel{n}"), &steps)
}

/// Checks the audit trail of a task and of each of its steps:
/// - exactly one `most_recent` row, and it is the newest;
/// - the entity's `state` equals that row's `to_state`;
/// - transition ids strictly ascending;
/// - the first row comes from nowhere (`from_state` None) and every later row starts
///   where the previous one ended (a chain with no gaps).
pub async fn assert_audit_consistent(store: &SharedStore, task_uuid: Uuid) {
    let task = store.task_get(task_uuid).await.expect("task_get").expect("task exists");
    let rows = store.task_transitions(task_uuid).await.expect("task_transitions");
    check_chain(&format!("task {task_uuid}"), task.state.as_str(), &rows);
    for s in &task.steps {
        let rows = store.step_transitions(s.step_uuid).await.expect("step_transitions");
        check_chain(&format!("step {} ({})", s.name, s.step_uuid), s.state.as_str(), &rows);
    }
}

fn check_chain(what: &str, state: &str, rows: &[TransitionRecord]) {
    assert!(!rows.is_empty(), "{what}: no audit rows");
    let recent: Vec<&TransitionRecord> = rows.iter().filter(|r| r.most_recent).collect();
    assert_eq!(
        recent.len(),
        1,
        "{what}: expected exactly one most_recent row, got {rows:#?}"
    );
    assert!(
        rows.last().unwrap().most_recent,
        "{what}: the newest row is not the most_recent one: {rows:#?}"
    );
    assert_eq!(
        recent[0].to_state, state,
        "{what}: state column disagrees with the most_recent audit row: {rows:#?}"
    );
    assert_eq!(
        rows[0].from_state, None,
        "{what}: the first audit row must be the creation row: {rows:#?}"
    );
    for w in rows.windows(2) {
        assert!(
            w[0].transition_id < w[1].transition_id,
            "{what}: transition ids not ascending: {rows:#?}"
        );
        assert_eq!(
            w[1].from_state.as_deref(),
            Some(w[0].to_state.as_str()),
            "{what}: audit chain broken between #{} and #{}: {rows:#?}",
            w[0].transition_id,
            w[1].transition_id
        );
        assert!(
            w[0].created_at <= w[1].created_at,
            "{what}: audit rows go back in time: {rows:#?}"
        );
    }
}

/// Expands to one `#[tokio::test]` per conformance case, in one module per area, each
/// run against a fresh harness from `$factory` (an `async fn() -> Harness` at the root
/// of the calling test crate).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:ident) => {
        $crate::conformance_cases! { $factory;
            task_create: [
                creates_the_task_its_steps_and_edges_in_one_call,
                enqueues_roots_and_leaves_children_pending,
                reports_what_it_created,
                a_duplicate_identity_returns_the_existing_task_and_creates_nothing,
                two_duplicates_in_one_batch_create_one_task,
                a_task_without_steps_is_created_complete,
                tasks_of_the_same_template_share_its_row,
                two_hundred_tasks_in_one_call_are_all_created,
                an_empty_batch_creates_nothing,
                a_duplicate_reports_the_existing_tasks_state_and_namespace,
                concurrent_creations_of_one_identity_create_one_task,
            ],
            step_claim: [
                claims_only_enqueued_steps_of_the_given_namespace,
                a_step_with_its_own_namespace_is_claimed_only_from_that_namespace,
                claim_never_returns_more_than_the_limit,
                a_second_claim_does_not_return_claimed_steps,
                a_claim_increments_attempts_and_claim_seq,
                a_claim_sets_the_deadline_and_a_lease_no_later_than_it,
                a_claimed_child_receives_its_parents_results_verbatim,
                a_claimed_step_carries_its_task_context_and_definition,
                a_step_waiting_for_retry_is_claimed_only_once_its_delay_has_passed,
                claiming_a_retried_step_resumes_its_waiting_task,
                a_retried_step_of_a_running_task_leaves_the_task_running,
                steps_of_a_finished_task_are_never_claimed,
                concurrent_claims_never_return_the_same_step,
            ],
            step_complete: [
                success_completes_the_step_through_orchestration,
                a_child_is_enqueued_only_when_all_its_parents_completed,
                parents_completed_in_one_batch_enqueue_their_join_once,
                retry_at_moves_the_step_to_waiting_for_retry,
                fail_moves_the_step_to_error,
                a_result_for_a_stale_claim_is_rejected,
                a_result_for_a_step_not_in_progress_is_rejected,
                a_duplicate_result_in_one_batch_is_applied_once,
                the_last_success_completes_the_task,
                a_permanent_failure_with_nothing_in_flight_fails_the_task,
                a_permanent_failure_of_a_held_task_blocks_it,
                a_failure_with_other_steps_in_flight_keeps_the_task_running,
                concurrent_last_results_finalize_each_task_exactly_once,
                a_batch_spanning_several_tasks_applies_all,
                evaluating_a_settled_task_changes_nothing,
                eager_dispatch_claims_the_successor_in_the_same_transaction,
                eager_dispatch_respects_its_limit_and_namespaces,
            ],
            lease: [
                extending_moves_the_lease_but_never_past_the_deadline,
                extending_ignores_stale_claims,
                extending_never_shortens_a_lease,
                the_expired_list_holds_only_in_progress_steps_whose_lease_ended,
                the_expired_list_flags_claims_past_their_deadline,
                a_released_step_is_enqueued_again_without_burning_an_attempt,
                an_expired_lease_returns_the_step_without_burning_an_attempt,
                a_result_after_a_release_is_rejected,
                releasing_a_stale_claim_changes_nothing,
                a_release_racing_a_result_lets_exactly_one_win,
            ],
            dynamic: [
                a_decision_creates_its_branch_and_convergence_with_its_result,
                a_convergence_waits_only_for_the_branches_created,
                no_branches_creates_nothing_and_the_task_completes,
                an_undeclared_branch_fails_the_decision_and_creates_nothing,
                an_outcome_applied_twice_creates_its_steps_once,
                a_convergence_fed_by_two_decisions_waits_for_both_even_in_one_batch,
                created_steps_can_be_claimed_eagerly_in_the_same_transaction,
                a_batch_outcome_creates_workers_whose_results_the_convergence_receives,
                no_batches_enqueues_the_convergence_at_once,
                more_batches_than_the_template_allows_fail_the_step,
                a_checkpoint_survives_a_lost_lease_and_a_retry,
                a_heartbeat_adds_no_audit_rows,
            ],
            domain_events: [
                a_durable_event_is_written_with_the_result,
                no_event_is_written_for_a_rejected_result,
                a_result_whose_transaction_rolls_back_writes_no_event,
                gates_follow_the_state_the_step_reaches,
                unacknowledged_events_are_delivered_again,
                consumers_are_independent,
                an_acknowledgement_never_moves_back,
                polls_filter_by_name_pattern_and_limit,
                an_event_id_is_stored_once,
                prune_deletes_old_events_every_consumer_has_acknowledged,
            ],
            audit: [
                every_entity_ends_with_one_most_recent_row_matching_its_state,
                a_creation_audit_records_each_hop,
                a_retry_cycle_leaves_a_gapless_audit,
                audit_rows_carry_time_and_processor,
            ],
            template: [
                a_registered_template_is_found_with_its_definition,
                latest_is_the_highest_semver_and_exact_versions_match,
                task_creation_registers_its_template_for_lookup,
            ],
            reads: [
                task_get_lists_steps_in_creation_order,
                task_list_filters_by_state,
                task_list_filters_by_namespace,
                task_list_is_newest_first_and_paginates,
                transitions_are_oldest_first,
                unknown_uuids_read_as_none_or_empty,
                a_claim_of_n_steps_costs_a_constant_number_of_statements,
                a_completion_batch_costs_a_constant_number_of_statements,
            ],
            task_cancel: [
                cancelling_a_running_task_cancels_it_and_its_unfinished_steps,
                a_late_result_for_a_cancelled_step_is_rejected,
                a_finished_or_unknown_task_is_reported_and_left_alone,
                a_blocked_task_and_its_failed_step_can_be_cancelled,
                ready_counts_are_the_enqueued_steps_per_namespace,
                the_schema_status_of_a_migrated_store_is_current,
                cancels_racing_retry_claims_never_deadlock,
            ],
            dlq: [
                an_unclaimed_step_is_recorded_once_with_a_snapshot_and_held,
                a_lost_lease_is_recorded_and_the_late_result_rejected,
                retry_step_resets_attempts_and_the_task_completes,
                resolve_step_lets_its_successors_run_and_the_task_completes,
                complete_step_records_the_result_its_dependents_receive,
                a_resolution_writes_the_events_whose_gate_its_step_passes,
                bad_resolutions_are_refused_and_change_nothing,
                sweeps_running_at_once_record_each_task_once,
                a_task_waiting_too_long_is_held_and_a_template_can_allow_longer,
                a_failed_task_is_recorded_in_error_and_reopened_by_its_resolution,
                an_entry_whose_task_finished_meanwhile_is_closed_by_the_next_sweep,
            ],
        }
    };
}

/// The expansion behind [`conformance_suite!`].
#[macro_export]
macro_rules! conformance_cases {
    ($factory:ident; $($area:ident : [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $area {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let h = super::$factory().await;
                        $crate::conformance::$area::$case(h).await;
                    }
                )*
            }
        )*
    };
}
