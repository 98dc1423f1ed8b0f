//! Backend-independent half of writing decision and batch outcomes (results whose
//! outcome is `StepOutcome::Expand`). Inside the result transaction, before the
//! results are applied, each backend:
//! 1. reads the tasks of those results ([`ExpansionRead`]: which of the steps are
//!    still held by the claim their result quotes, each task's template, steps and
//!    edges; PostgreSQL also locks the held steps' rows);
//! 2. runs the expansion rule ([`plan`], `orchestration::step_expansion`) on it:
//!    steps to create, their edges, pending steps that gain parents; an outcome
//!    that cannot be carried out becomes a permanent failure of its step;
//! 3. writes the plan ([`ExpansionPayload`]), then applies the results as usual,
//!    so the expanding step completes and enqueues, as for any step, the created
//!    steps left with nothing to wait for.
//!
//! A result applies only under the claim it quotes, and step 1 keeps only results
//! whose claim still holds, so a duplicate or late result creates nothing; the
//! unique `(task_uuid, name)` constraint backs this up.

use super::batch::step_row;
use super::plan::TransitionPlan;
use super::*;
use crate::orchestration::step_expansion::{self, ExistingStep, PlannedStep, TaskSnapshot};
use crate::template::TaskTemplate;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// What the planning read returns.
#[derive(Debug, Clone, Default)]
pub struct ExpansionRead {
    /// Steps with an outcome to expand that are still held by the quoted claim,
    /// with their task.
    pub held: HashMap<Uuid, Uuid>,
    /// Each of their tasks' template definition.
    pub tasks: HashMap<Uuid, Value>,
    /// Each task's steps.
    pub steps: HashMap<Uuid, Vec<ExistingStep>>,
    /// Each task's edges, `(parent, child)`.
    pub edges: HashMap<Uuid, HashSet<(Uuid, Uuid)>>,
}

/// The claims of the results to expand, as the read's JSON parameter
/// (`[{step_uuid, claim_seq}]`); None when the batch has none (the usual path).
pub fn read_payload(unique: &[&StepCompletion]) -> Option<String> {
    let claims: Vec<(Uuid, i64)> = unique
        .iter()
        .filter(|c| matches!(c.outcome, StepOutcome::Expand { .. }))
        .map(|c| (c.step_uuid, c.claim_seq))
        .collect();
    (!claims.is_empty()).then(|| super::batch::claims_payload(&claims))
}

/// The expansion, as the JSON its statements read:
/// `{"steps": [step rows], "edges": [{task_uuid, parent, child}],
///   "bumps": [{step_uuid, added}], "tasks": [{task_uuid, added}]}`.
#[derive(Debug, Clone)]
pub struct ExpansionPayload {
    /// The JSON text.
    pub json: String,
    /// How many steps it creates.
    pub steps: usize,
    /// How many edges it creates (new steps' and existing steps' together).
    pub edges: usize,
    /// How many existing pending steps gain parents.
    pub bumps: usize,
}

impl ExpansionPayload {
    /// True when it writes nothing (every outcome was `no_branches`, `no_batches`
    /// with nothing after it, or refused).
    pub fn is_empty(&self) -> bool {
        self.steps == 0 && self.edges == 0
    }
}

/// The batch after planning: the results to apply (refused outcomes turned into
/// failures) and what to write first.
#[derive(Debug, Clone)]
pub struct PlannedBatch {
    /// The results, in the order given.
    pub completions: Vec<StepCompletion>,
    /// The expansion to write before applying them.
    pub payload: ExpansionPayload,
}

/// Plans every held result's expansion, task by task in batch order (a later
/// expansion of a task sees the steps an earlier one created).
pub fn plan(unique: &[&StepCompletion], mut read: ExpansionRead) -> Result<PlannedBatch, StoreError> {
    let mut snapshots: HashMap<Uuid, TaskSnapshot> = HashMap::new();
    let mut planned: Vec<(Uuid, PlannedStep)> = Vec::new();
    let (mut edges, mut bumps) = (Vec::new(), Vec::new());
    let mut completions = Vec::with_capacity(unique.len());
    for c in unique {
        let mut c = (*c).clone();
        if let (StepOutcome::Expand { outcome, .. }, Some(&task)) = (&c.outcome, read.held.get(&c.step_uuid)) {
            let snapshot = match snapshots.entry(task) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(snapshot_of(&mut read, task)?),
            };
            match step_expansion::expand(snapshot, c.step_uuid, outcome) {
                Ok(p) => {
                    planned.extend(p.steps.into_iter().map(|s| (task, s)));
                    edges.extend(
                        p.edges
                            .iter()
                            .map(|(parent, child)| json!({"task_uuid": task, "parent": parent, "child": child})),
                    );
                    bumps.extend(p.bumps);
                }
                Err(refusal) => {
                    tracing::warn!(step_uuid = %c.step_uuid, error_type = refusal.error_type, "{}", refusal.message);
                    c.outcome = StepOutcome::Fail {
                        error: json!({
                            "message": refusal.message, "error_type": refusal.error_type,
                            "retryable": false, "attempt": c.metadata.get("attempt"),
                        }),
                    };
                }
            }
        }
        completions.push(c);
    }
    // A step planned earlier in this batch that gains parents from a later expansion
    // is not in the database yet: it is created waiting for them.
    let index: HashMap<Uuid, usize> = planned
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (p.step.step_uuid, i))
        .collect();
    let mut existing_bumps = Vec::new();
    for (step, added) in bumps {
        match index.get(&step) {
            Some(&i) => planned[i].1.pending_parents += added,
            None => existing_bumps.push(json!({"step_uuid": step, "added": added})),
        }
    }
    let create_plan = TransitionPlan::new_step(&[]).expect("creation is legal");
    let mut added: HashMap<Uuid, usize> = HashMap::new();
    let mut steps = Vec::with_capacity(planned.len());
    for (task, p) in &planned {
        steps.push(step_row(*task, &p.step, p.pending_parents, &create_plan)?);
        *added.entry(*task).or_default() += 1;
    }
    let tasks: Vec<Value> = added.iter().map(|(t, n)| json!({"task_uuid": t, "added": n})).collect();
    let (count, edge_count, bump_count) = (steps.len(), edges.len(), existing_bumps.len());
    Ok(PlannedBatch {
        completions,
        payload: ExpansionPayload {
            json: json!({"steps": steps, "edges": edges, "bumps": existing_bumps, "tasks": tasks}).to_string(),
            steps: count,
            edges: edge_count,
            bumps: bump_count,
        },
    })
}

/// The snapshot of `task` from the read (taken out of it).
fn snapshot_of(read: &mut ExpansionRead, task: Uuid) -> Result<TaskSnapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "templates",
        reason,
    };
    let definition = read
        .tasks
        .get(&task)
        .ok_or_else(|| corrupt(format!("task {task} has no template")))?;
    let template: TaskTemplate = serde_json::from_value(definition.clone())
        .map_err(|e| corrupt(format!("the template of task {task} does not load: {e}")))?;
    Ok(TaskSnapshot {
        template,
        steps: read.steps.remove(&task).unwrap_or_default(),
        edges: read.edges.remove(&task).unwrap_or_default(),
        decided: HashSet::new(),
    })
}
