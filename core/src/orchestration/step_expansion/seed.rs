//! The seed of an expansion: the steps an outcome names directly (a decision's
//! branches, a batchable step's batch workers). Everything is checked before
//! anything is planned, so a refused outcome leaves the snapshot untouched.

use super::{Expansion, Refusal, INVALID_BATCHES, INVALID_DECISION, TOO_MANY_BATCHES};
use crate::contract::{BatchOutcome, CursorConfig, DecisionOutcome, DynamicOutcome};
use crate::template::validate::{identifier_problem, MAX_STEP_NAME_LEN};
use crate::template::StepType;
use serde_json::{json, Value};
use std::collections::HashSet;
use uuid::Uuid;

/// Plans the steps `outcome` names.
pub(super) fn seed(e: &mut Expansion, outcome: &DynamicOutcome) -> Result<(), Refusal> {
    match outcome {
        DynamicOutcome::Decision(d) => {
            expect_type(e, StepType::Decision, INVALID_DECISION)?;
            match d {
                DecisionOutcome::CreateSteps { step_names } => branches(e, step_names),
                DecisionOutcome::NoBranches {} => Ok(()),
            }
        }
        DynamicOutcome::Batch(b) => {
            expect_type(e, StepType::Batchable, INVALID_BATCHES)?;
            match b {
                BatchOutcome::CreateBatches {
                    total_items,
                    batch_size,
                    cursor_configs,
                } => batches(e, *total_items, *batch_size, cursor_configs.as_deref()),
                BatchOutcome::NoBatches {} => Ok(()),
            }
        }
    }
}

fn expect_type(e: &Expansion, want: StepType, error_type: &'static str) -> Result<(), Refusal> {
    let got = e.g.step_type(e.xi);
    if got == want {
        return Ok(());
    }
    Err(Refusal::new(
        error_type,
        format!(
            "step `{}` is a {} step; only a {} step's outcome creates steps of this kind",
            e.g.name(e.xi),
            got.as_str(),
            want.as_str()
        ),
    ))
}

/// A decision's `create_steps`: each name must be one of its branches.
fn branches(e: &mut Expansion, names: &[String]) -> Result<(), Refusal> {
    let g = e.g;
    let x = g.name(e.xi);
    let branches: Vec<usize> = g
        .children(e.xi)
        .iter()
        .copied()
        .filter(|&c| g.step_type(c) != StepType::DeferredConvergence)
        .collect();
    let list = branches.iter().map(|&b| g.name(b)).collect::<Vec<_>>().join(", ");
    let refuse = |message: String| Err(Refusal::new(INVALID_DECISION, message));
    let mut chosen: Vec<(usize, Vec<Uuid>)> = Vec::new();
    for name in names {
        let Some(i) = g.index(name) else {
            return refuse(format!(
                "decision `{x}` named `{name}`, which is not a step of template `{}` (its branches: {list})",
                g.template.key()
            ));
        };
        if chosen.iter().any(|(c, _)| *c == i) {
            continue;
        }
        if !branches.contains(&i) {
            return refuse(if g.step_type(i) == StepType::DeferredConvergence {
                format!(
                    "decision `{x}` named `{name}`, a deferred_convergence step: the engine creates it when a \
                     branch it waits for is created (its branches: {list})"
                )
            } else {
                format!("decision `{x}` named `{name}`, which is not one of its branches (its branches: {list})")
            });
        }
        if e.present(i) {
            return refuse(format!(
                "decision `{x}` named `{name}`, which exists already in this task"
            ));
        }
        let mut parents = Vec::new();
        for &p in g.parents(i) {
            if p == e.xi {
                parents.push(e.x);
                continue;
            }
            let found = e.instance_uuids(p);
            if found.is_empty() {
                return refuse(format!(
                    "decision `{x}` cannot create `{name}`: it also depends on `{}`, which was not created in this task",
                    g.name(p)
                ));
            }
            parents.extend(found);
        }
        chosen.push((i, parents));
    }
    chosen.sort_by_key(|(i, _)| *i); // created in template order, whatever order they were named in
    for (i, parents) in chosen {
        let s = &g.template.steps[i];
        e.create(i, s.name.clone(), s.handler.initialization.clone(), parents);
    }
    Ok(())
}

/// A batchable step's `create_batches`: one batch worker per cursor range.
fn batches(
    e: &mut Expansion,
    total_items: Option<u64>,
    batch_size: Option<u64>,
    cursor_configs: Option<&[CursorConfig]>,
) -> Result<(), Refusal> {
    let g = e.g;
    let x = g.name(e.xi);
    let refuse = |error_type, message: String| Err(Refusal::new(error_type, message));
    let Some(w) = g.worker_template(e.xi) else {
        return refuse(
            INVALID_BATCHES,
            format!("batchable step `{x}` has no batch_worker step to clone"),
        );
    };
    let config = g.template.steps[e.xi].batch_config.clone().unwrap_or_default();
    let configs = match (cursor_configs, total_items) {
        (Some(c), _) => c.to_vec(),
        (None, Some(total)) => {
            let size = batch_size.unwrap_or(config.batch_size);
            if size == 0 {
                return refuse(INVALID_BATCHES, format!("`{x}` asked for batches of 0 items"));
            }
            if total.div_ceil(size) > u64::from(config.max_batches) {
                return refuse(
                    TOO_MANY_BATCHES,
                    format!(
                        "`{x}` asked for {} batches ({total} items, {size} per batch), more than its \
                         batch_config.max_batches ({})",
                        total.div_ceil(size),
                        config.max_batches
                    ),
                );
            }
            CursorConfig::cut(total, size)
        }
        (None, None) => {
            return refuse(
                INVALID_BATCHES,
                format!("`{x}` returned create_batches without `total_items` or `cursor_configs`"),
            )
        }
    };
    if configs.len() > config.max_batches as usize {
        return refuse(
            TOO_MANY_BATCHES,
            format!(
                "`{x}` asked for {} batches, more than its batch_config.max_batches ({})",
                configs.len(),
                config.max_batches
            ),
        );
    }
    let worker = &g.template.steps[w];
    let mut ids = HashSet::new();
    let mut names = Vec::with_capacity(configs.len());
    for c in &configs {
        let name = format!("{}_{}", worker.name, c.batch_id);
        if let Some(problem) = identifier_problem(&name, MAX_STEP_NAME_LEN) {
            return refuse(
                INVALID_BATCHES,
                format!(
                    "batch id `{}` makes the step name `{name}`, which {problem}",
                    c.batch_id
                ),
            );
        }
        if !ids.insert(c.batch_id.as_str()) {
            return refuse(INVALID_BATCHES, format!("batch id `{}` is used twice", c.batch_id));
        }
        if e.name_taken(&name) {
            return refuse(
                INVALID_BATCHES,
                format!(
                    "batch id `{}` makes the step name `{name}`, which exists already",
                    c.batch_id
                ),
            );
        }
        names.push(name);
    }
    for (c, name) in configs.iter().zip(names) {
        let cursor = json!({ "batch_id": c.batch_id, "start_cursor": c.start_cursor, "end_cursor": c.end_cursor });
        let init = match &worker.handler.initialization {
            Value::Object(m) => {
                let mut m = m.clone();
                m.insert("cursor".into(), cursor);
                Value::Object(m)
            }
            _ => json!({ "cursor": cursor }),
        };
        e.create(w, name, init, vec![e.x]);
    }
    Ok(())
}
