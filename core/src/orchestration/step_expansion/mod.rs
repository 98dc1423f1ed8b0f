//! Step expansion: the steps a decision or batchable step's outcome creates, and
//! how they are wired. A pure rule, like the TaskFinalizer's: the store runs it
//! inside the transaction that records the outcome (between reading the task's
//! steps and writing the result), and writes the plan it returns in that same
//! transaction, so a result and the steps it creates commit together or not at all.
//!
//! What an expansion of step X creates:
//! 1. **The seed.** A decision's `create_steps`: the named branches (steps that
//!    depend on X; never a deferred_convergence or batch_worker step). A batchable
//!    step's `create_batches`: one step per cursor range, cloned from its
//!    batch_worker step and called `<worker>_<batch_id>`, with `{"cursor":
//!    {batch_id, start_cursor, end_cursor}}` merged into its handler's
//!    initialization. `no_branches` and `no_batches` seed nothing.
//! 2. **The closure.** Repeated until nothing changes: a standard, decision or
//!    batchable step that does not exist yet, is no decision's branch, and whose
//!    dependencies all exist with at least one just created; and a
//!    deferred_convergence step one of whose dependencies is X, X's batch_worker
//!    step, or a step just created.
//! 3. **Edges.** A created step depends on its declared dependencies that exist
//!    (a convergence on every created batch worker of a batch_worker dependency),
//!    never on one that does not: intersection semantics. A convergence also
//!    depends on X (it receives X's result, and runs when X created nothing it
//!    waits for), and on every decision or batchable step still undecided that
//!    could yet create one of its missing dependencies, so it never runs before
//!    those have decided. An existing convergence still pending gains edges from
//!    the steps this expansion creates that it waits for.
//!
//! A created step waits for as many parents as are not complete; X counts as not
//! complete (the result transaction completes it afterwards and enqueues, as for
//! any step, the children it leaves with nothing to wait for).
//!
//! An outcome that cannot be carried out (a name that is not one of X's branches,
//! more batches than `batch_config.max_batches`, a bad batch id) creates nothing:
//! [`Refusal`] says why, and the store fails X with it (not retryable).

mod seed;
#[cfg(test)]
mod tests;

use crate::contract::DynamicOutcome;
use crate::state::StepState;
use crate::store::NewStep;
use crate::template::graph::StepGraph;
use crate::template::{StepType, TaskTemplate};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Error type of a decision that names steps it cannot create, or returns no outcome.
pub const INVALID_DECISION: &str = "invalid_decision";
/// Error type of a batch outcome that cannot be carried out (bad ids), or none.
pub const INVALID_BATCHES: &str = "invalid_batches";
/// Error type of a batch outcome over the template's `batch_config.max_batches`.
pub const TOO_MANY_BATCHES: &str = "too_many_batches";

/// One step of a task as it is in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingStep {
    /// The step.
    pub step_uuid: Uuid,
    /// Its name.
    pub name: String,
    /// The template step it was made from.
    pub template_step_name: String,
    /// Its state.
    pub state: StepState,
}

/// A task's steps and edges, and its template: what an expansion is planned on.
/// Plans update it, so several expansions of one task in one batch see each other.
#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    /// The template the task was created from.
    pub template: TaskTemplate,
    /// Its steps.
    pub steps: Vec<ExistingStep>,
    /// Its edges, `(parent, child)`.
    pub edges: HashSet<(Uuid, Uuid)>,
    /// Dynamic steps whose expansion was planned in this batch (they are still
    /// `in_progress` in `steps`, as in the database until the result is applied).
    pub decided: HashSet<Uuid>,
}

/// A step to create.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The row (its `parents` field is unused: see `ExpansionPlan::edges`).
    pub step: NewStep,
    /// Parents not complete when it is created.
    pub pending_parents: u32,
}

/// What one expansion writes.
#[derive(Debug, Clone, Default)]
pub struct ExpansionPlan {
    /// Steps to create, in order.
    pub steps: Vec<PlannedStep>,
    /// Edges to create, `(parent, child)`.
    pub edges: Vec<(Uuid, Uuid)>,
    /// Existing pending steps that gain parents: `(step, how many)`.
    pub bumps: Vec<(Uuid, u32)>,
}

/// Why an outcome creates nothing; the step fails with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `invalid_decision`, `invalid_batches` or `too_many_batches`.
    pub error_type: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl Refusal {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}

/// Plans what `outcome`, returned by step `x` of the task, creates, and records
/// the plan in `snapshot`.
pub fn expand(snapshot: &mut TaskSnapshot, x: Uuid, outcome: &DynamicOutcome) -> Result<ExpansionPlan, Refusal> {
    let TaskSnapshot {
        template,
        steps,
        edges,
        decided,
    } = snapshot;
    let graph = StepGraph::new(template);
    let mut e = Expansion::new(&graph, steps, edges, decided, x)?;
    seed::seed(&mut e, outcome)?;
    e.close();
    e.extend_existing_convergences();
    let plan = e.finish();
    decided.insert(x);
    Ok(plan)
}

/// The state of one expansion while it is planned.
struct Expansion<'a, 'g> {
    g: &'a StepGraph<'g>,
    steps: &'a mut Vec<ExistingStep>,
    edges: &'a mut HashSet<(Uuid, Uuid)>,
    decided: &'a HashSet<Uuid>,
    /// The expanding step and its template index.
    x: Uuid,
    xi: usize,
    /// Steps existing before this expansion.
    existing: usize,
    /// Template step index → indexes into `steps` of its instances.
    instances: HashMap<usize, Vec<usize>>,
    /// Template steps with instances created by this expansion.
    created: BTreeSet<usize>,
    planned: Vec<PlannedStep>,
    new_edges: Vec<(Uuid, Uuid)>,
    bumps: Vec<(Uuid, u32)>,
}

impl<'a, 'g> Expansion<'a, 'g> {
    fn new(
        g: &'a StepGraph<'g>,
        steps: &'a mut Vec<ExistingStep>,
        edges: &'a mut HashSet<(Uuid, Uuid)>,
        decided: &'a HashSet<Uuid>,
        x: Uuid,
    ) -> Result<Self, Refusal> {
        let mut instances: HashMap<usize, Vec<usize>> = HashMap::new();
        for (k, s) in steps.iter().enumerate() {
            if let Some(i) = g.index(&s.template_step_name) {
                instances.entry(i).or_default().push(k);
            }
        }
        let xi = steps
            .iter()
            .find(|s| s.step_uuid == x)
            .and_then(|s| g.index(&s.template_step_name))
            .ok_or_else(|| {
                Refusal::new(
                    INVALID_DECISION,
                    format!("step {x} is not a step of template `{}`", g.template.key()),
                )
            })?;
        Ok(Self {
            existing: steps.len(),
            g,
            steps,
            edges,
            decided,
            x,
            xi,
            instances,
            created: BTreeSet::new(),
            planned: Vec::new(),
            new_edges: Vec::new(),
            bumps: Vec::new(),
        })
    }

    /// True when template step `i` has an instance in the task (or planned).
    fn present(&self, i: usize) -> bool {
        self.instances.get(&i).is_some_and(|v| !v.is_empty())
    }

    /// The uuids of template step `i`'s instances.
    fn instance_uuids(&self, i: usize) -> Vec<Uuid> {
        self.instances
            .get(&i)
            .map(|v| v.iter().map(|&k| self.steps[k].step_uuid).collect())
            .unwrap_or_default()
    }

    /// True when a step of this name exists (or is planned).
    fn name_taken(&self, name: &str) -> bool {
        self.steps.iter().any(|s| s.name == name)
    }

    /// Plans a step made from template step `i` with `parents`.
    fn create(&mut self, i: usize, name: String, initialization: serde_json::Value, mut parents: Vec<Uuid>) {
        let mut seen = HashSet::new();
        parents.retain(|p| seen.insert(*p)); // each parent counts once
        let step = super::task_request::new_step(self.g.template, &self.g.template.steps[i], name, initialization);
        let uuid = step.step_uuid;
        let pending = parents.iter().filter(|p| !self.satisfied(**p)).count() as u32;
        for p in parents {
            self.add_edge(p, uuid);
        }
        self.steps.push(ExistingStep {
            step_uuid: uuid,
            name: step.name.clone(),
            template_step_name: step.template_step_name.clone(),
            state: StepState::Pending,
        });
        self.instances.entry(i).or_default().push(self.steps.len() - 1);
        self.created.insert(i);
        self.planned.push(PlannedStep {
            step,
            pending_parents: pending,
        });
    }

    /// True when `step` is complete in the database (so a new child need not wait for it).
    fn satisfied(&self, step: Uuid) -> bool {
        self.steps
            .iter()
            .find(|s| s.step_uuid == step)
            .is_some_and(|s| matches!(s.state, StepState::Complete | StepState::ResolvedManually))
    }

    /// Adds an edge unless it exists; true when added.
    fn add_edge(&mut self, parent: Uuid, child: Uuid) -> bool {
        if self.edges.insert((parent, child)) {
            self.new_edges.push((parent, child));
            true
        } else {
            false
        }
    }

    /// The closure: steps that the seed makes creatable, until nothing changes.
    fn close(&mut self) {
        let worker_of_x = self.g.worker_template(self.xi);
        loop {
            let mut changed = false;
            for i in 0..self.g.template.steps.len() {
                if self.g.index(self.g.name(i)) != Some(i) || self.present(i) {
                    continue;
                }
                let parents = self.g.parents(i);
                let ready = match self.g.step_type(i) {
                    StepType::BatchWorker => false,
                    StepType::DeferredConvergence => parents
                        .iter()
                        .any(|&p| p == self.xi || Some(p) == worker_of_x || self.created.contains(&p)),
                    _ => {
                        !parents.is_empty()
                            && !parents.iter().any(|&p| self.g.step_type(p) == StepType::Decision)
                            && parents.iter().all(|&p| self.present(p))
                            && parents.iter().any(|&p| self.created.contains(&p))
                    }
                };
                if !ready {
                    continue;
                }
                let mut from: Vec<Uuid> = parents.iter().flat_map(|&p| self.instance_uuids(p)).collect();
                if self.g.step_type(i) == StepType::DeferredConvergence {
                    if !from.contains(&self.x) {
                        from.push(self.x);
                    }
                    for y in self.undecided_creators_of_missing(i, 0) {
                        if !from.contains(&y) {
                            from.push(y);
                        }
                    }
                }
                let s = &self.g.template.steps[i];
                self.create(i, s.name.clone(), s.handler.initialization.clone(), from);
                changed = true;
            }
            if !changed {
                return;
            }
        }
    }

    /// Dynamic steps, among the task's steps from index `since` on, that are not
    /// decided yet and could create one of convergence `c`'s missing dependencies.
    fn undecided_creators_of_missing(&self, c: usize, since: usize) -> Vec<Uuid> {
        let missing: Vec<usize> = self
            .g
            .parents(c)
            .iter()
            .copied()
            .filter(|&d| !self.present(d))
            .collect();
        if missing.is_empty() {
            return vec![];
        }
        let could_create: BTreeSet<usize> = missing.iter().flat_map(|&d| self.g.ancestors(d)).collect();
        self.steps[since..]
            .iter()
            .filter(|s| {
                s.step_uuid != self.x
                    && !self.decided.contains(&s.step_uuid)
                    && !matches!(s.state, StepState::Complete | StepState::ResolvedManually)
                    && self
                        .g
                        .index(&s.template_step_name)
                        .is_some_and(|t| self.g.is_dynamic(t) && could_create.contains(&t))
            })
            .map(|s| s.step_uuid)
            .collect()
    }

    /// Existing convergence steps still pending gain edges from the steps this
    /// expansion created that they wait for (directly, or as possible creators of
    /// a dependency still missing).
    fn extend_existing_convergences(&mut self) {
        let mut bumps = Vec::new();
        for k in 0..self.existing {
            let Some(c) = self.g.index(&self.steps[k].template_step_name) else {
                continue;
            };
            if self.g.step_type(c) != StepType::DeferredConvergence {
                continue;
            }
            let mut from: Vec<Uuid> = Vec::new();
            for &d in self.g.parents(c) {
                if let Some(v) = self.instances.get(&d) {
                    from.extend(
                        v.iter()
                            .filter(|&&j| j >= self.existing)
                            .map(|&j| self.steps[j].step_uuid),
                    );
                }
            }
            from.extend(self.undecided_creators_of_missing(c, self.existing));
            if from.is_empty() {
                continue;
            }
            let child = self.steps[k].step_uuid;
            if self.steps[k].state != StepState::Pending {
                tracing::error!(step = %self.steps[k].name, state = %self.steps[k].state,
                    "a convergence step that already left pending would wait for newly created steps; left as is");
                continue;
            }
            let added = from.into_iter().filter(|&p| self.add_edge(p, child)).count() as u32;
            if added > 0 {
                bumps.push((child, added));
            }
        }
        self.bumps = bumps;
    }

    fn finish(self) -> ExpansionPlan {
        ExpansionPlan {
            steps: self.planned,
            edges: self.new_edges,
            bumps: self.bumps,
        }
    }
}
