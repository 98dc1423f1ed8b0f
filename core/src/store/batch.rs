//! Backend-independent halves of the batch statements: the JSON payloads that bulk
//! parameters carry, the deduplication of result batches, the TaskFinalizer's plans
//! computed from step counts, and the answers to a creation batch. Both backends
//! build and read exactly these shapes, so their SQL stays the only difference.

use super::plan::TransitionPlan;
use super::*;
use crate::orchestration::task_finalizer;
use crate::state::{StepCounts, StepEvent, StepState, TaskEvent, TaskState};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

/// The bulk parameters of a task creation, as JSON text.
#[derive(Debug, Clone)]
pub struct CreationPayload {
    /// One object per distinct template.
    pub templates: String,
    /// One object per task.
    pub tasks: String,
    /// One object per step of every task.
    pub steps: String,
    /// One object per edge.
    pub edges: String,
    /// Every identity hash submitted.
    pub identity_hashes: String,
}

/// Builds the creation payload. JSON payload columns (context, initialization,
/// retry policy, definitions, paths) travel as JSON text so that neither backend
/// re-renders numbers.
pub fn creation_payload(tasks: &[NewTask]) -> Result<CreationPayload, StoreError> {
    let root_plan = TransitionPlan::new_step(&[StepEvent::Enqueue]).expect("enqueue from pending is legal");
    let child_plan = TransitionPlan::new_step(&[]).expect("creation is legal");
    let mut templates = BTreeMap::new();
    let (mut task_rows, mut step_rows, mut edge_rows, mut hashes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        templates.entry(t.template.content_hash.clone()).or_insert_with(|| {
            json!({
                "content_hash": t.template.content_hash, "namespace": t.template.namespace,
                "name": t.template.name, "version": t.template.version,
                "definition": t.template.definition.to_string(),
            })
        });
        let plan = task_finalizer::creation_plan(!t.steps.is_empty());
        task_rows.push(json!({
            "task_uuid": t.task_uuid, "template_hash": t.template.content_hash,
            "namespace": t.template.namespace, "name": t.template.name, "version": t.template.version,
            "state": plan.final_state(), "context": t.context.to_string(), "identity_hash": t.identity_hash,
            "correlation_id": t.correlation_id, "priority": t.priority,
            "hold_failed": t.hold_failed as i64, "step_count": t.steps.len(),
            "transition_event": plan.final_event(), "transition_path": plan.path_json(),
        }));
        hashes.push(t.identity_hash.clone());
        for s in &t.steps {
            let plan = if s.parents.is_empty() { &root_plan } else { &child_plan };
            step_rows.push(step_row(t.task_uuid, s, s.parents.len() as u32, plan)?);
            for &parent in &s.parents {
                edge_rows.push(
                    json!({ "task_uuid": t.task_uuid, "parent": t.steps[parent].step_uuid, "child": s.step_uuid }),
                );
            }
        }
    }
    Ok(CreationPayload {
        templates: Value::Array(templates.into_values().collect()).to_string(),
        tasks: Value::Array(task_rows).to_string(),
        steps: Value::Array(step_rows).to_string(),
        edges: Value::Array(edge_rows).to_string(),
        identity_hashes: serde_json::to_string(&hashes)?,
    })
}

/// One step row as the insert statements read it: JSON payload columns travel as
/// JSON text; `plan` is the row's creation path.
pub fn step_row(
    task_uuid: Uuid,
    s: &NewStep,
    pending_parents: u32,
    plan: &TransitionPlan,
) -> Result<Value, StoreError> {
    Ok(json!({
        "step_uuid": s.step_uuid, "task_uuid": task_uuid,
        "namespace": s.namespace, "name": s.name, "template_step_name": s.template_step_name,
        "step_type": s.step_type, "handler_callable": s.handler_callable, "handler_method": s.handler_method,
        "handler_initialization": s.handler_initialization.to_string(),
        "retry_policy": serde_json::to_string(&s.retry)?, "max_attempts": s.retry.max_attempts,
        "timeout_ms": s.timeout_ms, "state": plan.final_state(), "pending_parents": pending_parents,
        "transition_event": plan.final_event(), "transition_path": plan.path_json(),
    }))
}

/// A task that held an identity before the creation batch.
#[derive(Debug, Clone)]
pub struct ExistingTask {
    /// The task.
    pub task_uuid: Uuid,
    /// Its state.
    pub state: TaskState,
    /// Its namespace.
    pub namespace: String,
}

/// The answer to each submitted task, in order: created, a duplicate of a task
/// created earlier in the same batch, or a duplicate of an existing task. None when
/// a duplicate's holder is unknown (it was created by a transaction this one could
/// not see yet: look it up again).
pub fn creation_answers(
    tasks: &[NewTask],
    created: &HashSet<Uuid>,
    existing: &HashMap<String, ExistingTask>,
) -> Vec<Option<TaskCreated>> {
    let created_by_hash: HashMap<&str, &NewTask> = tasks
        .iter()
        .filter(|t| created.contains(&t.task_uuid))
        .map(|t| (t.identity_hash.as_str(), t))
        .collect();
    tasks
        .iter()
        .map(|t| {
            if created.contains(&t.task_uuid) {
                let state = TaskState::from_str(task_finalizer::creation_plan(!t.steps.is_empty()).final_state())
                    .expect("plan states are valid");
                Some(TaskCreated {
                    task_uuid: t.task_uuid,
                    created: true,
                    state,
                    enqueued_steps: t.steps.iter().filter(|s| s.parents.is_empty()).count(),
                    namespace: t.template.namespace.clone(),
                    enqueued_namespaces: root_namespaces(t),
                })
            } else if let Some(first) = created_by_hash.get(t.identity_hash.as_str()) {
                let state = TaskState::from_str(task_finalizer::creation_plan(!first.steps.is_empty()).final_state())
                    .expect("plan states are valid");
                Some(TaskCreated {
                    task_uuid: first.task_uuid,
                    created: false,
                    state,
                    enqueued_steps: 0,
                    namespace: first.template.namespace.clone(),
                    enqueued_namespaces: vec![],
                })
            } else {
                existing.get(&t.identity_hash).map(|e| TaskCreated {
                    task_uuid: e.task_uuid,
                    created: false,
                    state: e.state,
                    enqueued_steps: 0,
                    namespace: e.namespace.clone(),
                    enqueued_namespaces: vec![],
                })
            }
        })
        .collect()
}

/// The namespaces of a new task's root steps, each once, in step order.
fn root_namespaces(t: &NewTask) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in t.steps.iter().filter(|s| s.parents.is_empty()) {
        if !out.contains(&s.namespace) {
            out.push(s.namespace.clone());
        }
    }
    out
}

/// Splits a result batch: the first result per step, and the steps of later
/// duplicates (rejected, never raced).
pub fn dedupe(completions: &[StepCompletion]) -> (Vec<&StepCompletion>, Vec<Uuid>) {
    let mut seen = HashSet::new();
    let mut unique = Vec::with_capacity(completions.len());
    let mut duplicates = Vec::new();
    for c in completions {
        if seen.insert(c.step_uuid) {
            unique.push(c);
        } else {
            duplicates.push(c.step_uuid);
        }
    }
    (unique, duplicates)
}

/// The plan a result takes a step through.
pub fn completion_plan(outcome: &StepOutcome) -> TransitionPlan {
    let events: &[StepEvent] = match outcome {
        StepOutcome::Complete { .. } | StepOutcome::Expand { .. } => &[StepEvent::Succeed, StepEvent::Complete],
        StepOutcome::RetryAt { .. } => &[StepEvent::Fail, StepEvent::WaitForRetry],
        StepOutcome::Fail { .. } => &[StepEvent::Fail, StepEvent::GiveUp],
    };
    TransitionPlan::step(StepState::InProgress, events).expect("result paths are legal")
}

/// The results of a batch as the JSON array the apply statements read.
pub fn completion_payload(unique: &[&StepCompletion]) -> String {
    let rows: Vec<Value> = unique
        .iter()
        .map(|c| {
            let plan = completion_plan(&c.outcome);
            let (result, error, ready_at) = match &c.outcome {
                StepOutcome::Complete { result } | StepOutcome::Expand { result, .. } => {
                    (Some(result.to_string()), None, None)
                }
                StepOutcome::RetryAt { error, ready_at } => (None, Some(error.to_string()), Some(*ready_at)),
                StepOutcome::Fail { error } => (None, Some(error.to_string()), None),
            };
            json!({
                "step_uuid": c.step_uuid, "claim_seq": c.claim_seq, "state": plan.final_state(),
                "event": plan.final_event(), "path": plan.path_json(), "result": result, "error": error,
                "ready_at": ready_at, "metadata": c.metadata.to_string(),
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

/// How many steps of a task are in one state, with the task's own state.
#[derive(Debug, Clone)]
pub struct CountRow {
    /// The task.
    pub task_uuid: Uuid,
    /// Its state.
    pub task_state: TaskState,
    /// Whether it holds failed tasks for an operator.
    pub hold_failed: bool,
    /// The step state counted (None for a task with no steps).
    pub step_state: Option<StepState>,
    /// How many steps are in it.
    pub n: u32,
}

/// The TaskFinalizer's plans for the counted tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskPlans {
    /// JSON array of `{task_uuid, expected, state, event, path}`.
    pub json: String,
    /// Each planned task's expected (current) state.
    pub expected: HashMap<Uuid, TaskState>,
}

/// Applies the TaskFinalizer's rule to every counted task. `newly_enqueued` holds
/// tasks that just had successors enqueued.
pub fn plans_from_counts(rows: impl IntoIterator<Item = CountRow>, newly_enqueued: &HashSet<Uuid>) -> TaskPlans {
    plans_from_counts_with(rows, newly_enqueued, task_finalizer::plan_after_results)
}

/// Like [`plans_from_counts`], with another rule for the plan of one task (given its
/// state, `hold_failed`, step counts and whether steps were newly enqueued).
pub fn plans_from_counts_with(
    rows: impl IntoIterator<Item = CountRow>,
    newly_enqueued: &HashSet<Uuid>,
    rule: impl Fn(TaskState, bool, &StepCounts, bool) -> Option<TransitionPlan>,
) -> TaskPlans {
    let mut per_task: BTreeMap<Uuid, (TaskState, bool, StepCounts)> = BTreeMap::new();
    for r in rows {
        let entry = per_task
            .entry(r.task_uuid)
            .or_insert_with(|| (r.task_state, r.hold_failed, StepCounts::default()));
        if let Some(state) = r.step_state {
            entry.2.add(state, r.n);
        }
    }
    let mut plans = Vec::new();
    let mut expected = HashMap::new();
    for (uuid, (state, hold, counts)) in per_task {
        if let Some(plan) = rule(state, hold, &counts, newly_enqueued.contains(&uuid)) {
            plans.push(json!({
                "task_uuid": uuid, "expected": state.as_str(), "state": plan.final_state(),
                "event": plan.final_event(), "path": plan.path_json(),
            }));
            expected.insert(uuid, state);
        }
    }
    TaskPlans {
        json: Value::Array(plans).to_string(),
        expected,
    }
}

/// Claims as the JSON array `[{step_uuid, claim_seq}]`.
pub fn claims_payload(claims: &[(Uuid, i64)]) -> String {
    Value::Array(
        claims
            .iter()
            .map(|(u, c)| json!({"step_uuid": u, "claim_seq": c}))
            .collect(),
    )
    .to_string()
}

/// The audit event and metadata of a release.
pub fn release_audit(reason: ReleaseReason) -> (&'static str, String) {
    let (event, why) = match reason {
        ReleaseReason::Released => (StepEvent::Release, "released by the worker"),
        ReleaseReason::LeaseExpired => (StepEvent::LeaseExpired, "lease expired; the attempt is not counted"),
    };
    let plan = TransitionPlan::step(StepState::InProgress, &[event]).expect("release is legal");
    (plan.final_event(), json!({ "reason": why }).to_string())
}

/// The path a claimed retry takes (waiting_for_retry → pending → enqueued → …).
pub fn retry_claim_path() -> Option<String> {
    TransitionPlan::step(
        StepState::WaitingForRetry,
        &[StepEvent::Retry, StepEvent::Enqueue, StepEvent::Start],
    )
    .expect("retry claim path is legal")
    .path_json()
}

/// The plan of a task resumed from waiting_for_retry by a claim.
pub fn retry_resume_plan() -> TransitionPlan {
    TransitionPlan::task(
        TaskState::WaitingForRetry,
        &[TaskEvent::RetryReady, TaskEvent::StepsEnqueued],
    )
    .expect("retry resume path is legal")
}
