//! The wiring rules of dynamic steps, checked when a template loads: what can be
//! told from the template alone about decision, deferred_convergence, batchable
//! and batch_worker steps. What depends on a handler's answer (which branches, how
//! many batches) is checked when the answer arrives (`orchestration::step_expansion`).
//!
//! - A decision step has at least one branch (a step that depends on it). A step is
//!   the branch of one decision at most, and depends otherwise only on steps that
//!   come before that decision (they exist when the branch is created).
//! - A deferred_convergence step follows a decision or batchable step: one of its
//!   dependencies is one, is a batch_worker, or comes after one.
//! - A batchable step drives exactly one batch_worker step (the one that depends on
//!   it, or the one `batch_config.worker_template` names); `batch_size` and
//!   `max_batches` are at least 1.
//! - A batch_worker step depends on exactly one step, its batchable step, carries no
//!   `batch_config` of its own, and only deferred_convergence steps depend on it.

use super::graph::StepGraph;
use super::model::{StepType, TaskTemplate};
use super::validate::Problems;

/// Most batch workers a template may allow one batchable step to create.
pub const MAX_BATCHES_LIMIT: u32 = 10_000;

/// Runs every wiring rule on `t`, adding problems to `out`.
pub(crate) fn check(t: &TaskTemplate, out: &mut Problems) {
    let g = StepGraph::new(t);
    for (i, s) in t.steps.iter().enumerate() {
        if g.index(&s.name) != Some(i) {
            continue; // a duplicate name, reported elsewhere
        }
        let step = Some(s.name.as_str());
        match s.step_type {
            StepType::Decision if g.children(i).is_empty() => out.push(
                step,
                Some("type".into()),
                format!(
                    "a decision step needs at least one branch: no step depends on `{}`",
                    s.name
                ),
            ),
            StepType::DeferredConvergence => check_convergence(&g, i, out),
            StepType::Batchable => check_batchable(&g, i, out),
            StepType::BatchWorker => check_batch_worker(&g, i, out),
            _ => {}
        }
        if s.batch_config.is_some() && !matches!(s.step_type, StepType::Batchable | StepType::BatchWorker) {
            out.push(
                step,
                Some("batch_config".into()),
                "only a batchable step takes batch_config",
            );
        }
        if s.step_type != StepType::DeferredConvergence {
            check_parents(&g, i, out);
        }
    }
}

fn check_convergence(g: &StepGraph, i: usize, out: &mut Problems) {
    let s = &g.template.steps[i];
    if s.dependencies.is_empty() {
        out.push(
            Some(&s.name),
            Some("dependencies".into()),
            "a deferred_convergence step needs at least one dependency",
        );
        return;
    }
    let follows_dynamic = g.parents(i).iter().any(|&p| {
        g.is_dynamic(p) || g.step_type(p) == StepType::BatchWorker || g.ancestors(p).iter().any(|&a| g.is_dynamic(a))
    });
    if !follows_dynamic && g.parents(i).len() == s.dependencies.len() {
        out.push(
            Some(&s.name),
            Some("type".into()),
            "a deferred_convergence step must follow a decision or batchable step, and none of its \
             dependencies does (make it a standard step)",
        );
    }
}

fn check_batchable(g: &StepGraph, i: usize, out: &mut Problems) {
    let s = &g.template.steps[i];
    let step = Some(s.name.as_str());
    let workers: Vec<&str> = g
        .children(i)
        .iter()
        .filter(|&&c| g.step_type(c) == StepType::BatchWorker)
        .map(|&c| g.name(c))
        .collect();
    let config = s.batch_config.clone().unwrap_or_default();
    match config.worker_template.as_deref() {
        Some(w) => match g.index(w) {
            None => out.push(
                step,
                Some("batch_config.worker_template".into()),
                format!("worker_template names unknown step `{w}`"),
            ),
            Some(wi) if g.step_type(wi) != StepType::BatchWorker => out.push(
                step,
                Some("batch_config.worker_template".into()),
                format!("worker_template `{w}` is not a batch_worker step"),
            ),
            Some(_) if !workers.contains(&w) => out.push(
                step,
                Some("batch_config.worker_template".into()),
                format!("worker_template `{w}` does not depend on `{}`", s.name),
            ),
            Some(_) => {}
        },
        None if workers.is_empty() => out.push(
            step,
            Some("type".into()),
            "a batchable step needs a batch_worker step that depends on it",
        ),
        None if workers.len() > 1 => out.push(
            step,
            Some("type".into()),
            format!(
                "a batchable step drives one batch_worker step, and `{}` has {} ({})",
                s.name,
                workers.len(),
                workers.join(", ")
            ),
        ),
        None => {}
    }
    if config.batch_size == 0 {
        out.push(step, Some("batch_config.batch_size".into()), "must be at least 1");
    }
    if !(1..=MAX_BATCHES_LIMIT).contains(&config.max_batches) {
        out.push(
            step,
            Some("batch_config.max_batches".into()),
            format!("must be between 1 and {MAX_BATCHES_LIMIT}, got {}", config.max_batches),
        );
    }
}

fn check_batch_worker(g: &StepGraph, i: usize, out: &mut Problems) {
    let s = &g.template.steps[i];
    let step = Some(s.name.as_str());
    let only_batchable =
        s.dependencies.len() == 1 && g.parents(i).len() == 1 && g.step_type(g.parents(i)[0]) == StepType::Batchable;
    if !only_batchable {
        out.push(
            step,
            Some("dependencies".into()),
            "a batch_worker step depends on exactly one step, its batchable step",
        );
    }
    if s.batch_config.is_some() {
        out.push(
            step,
            Some("batch_config".into()),
            "batch settings belong on the batchable step, not on the batch_worker step",
        );
    }
}

/// Rules on what a (non-convergence) step may depend on: batch workers feed only
/// convergence steps, and a decision's branch depends on one decision and on steps
/// before it.
fn check_parents(g: &StepGraph, i: usize, out: &mut Problems) {
    let s = &g.template.steps[i];
    let step = Some(s.name.as_str());
    for &p in g.parents(i) {
        if g.step_type(p) == StepType::BatchWorker && s.step_type != StepType::BatchWorker {
            out.push(
                step,
                Some("dependencies".into()),
                format!(
                    "depends on batch_worker `{}`; only a deferred_convergence step can (it receives every batch's result)",
                    g.name(p)
                ),
            );
        }
    }
    let decisions: Vec<usize> = g
        .parents(i)
        .iter()
        .copied()
        .filter(|&p| g.step_type(p) == StepType::Decision)
        .collect();
    match decisions.as_slice() {
        [] => {}
        [d] => {
            let before = g.ancestors(*d);
            for &p in g.parents(i) {
                if p != *d && !before.contains(&p) {
                    out.push(
                        step,
                        Some("dependencies".into()),
                        format!(
                            "`{}` is a branch of decision `{}` and also depends on `{}`, which does not come \
                             before `{}`; a branch may depend only on its decision and on steps before it",
                            s.name,
                            g.name(*d),
                            g.name(p),
                            g.name(*d)
                        ),
                    );
                }
            }
        }
        many => out.push(
            step,
            Some("dependencies".into()),
            format!(
                "`{}` depends on several decision steps ({}); a step can be the branch of one decision only",
                s.name,
                many.iter().map(|&d| g.name(d)).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{problems, the_problem, with_steps};

    fn step(name: &str, extra: &str) -> String {
        format!("  - name: {name}\n    handler: {{ callable: square }}\n{extra}")
    }

    fn steps(list: &[(&str, &str)]) -> String {
        with_steps(&list.iter().map(|(n, e)| step(n, e)).collect::<String>())
    }

    const DEC: &str = "    type: decision\n";

    #[test]
    fn a_decision_with_branches_and_a_convergence_is_valid() {
        let yaml = steps(&[
            ("check", ""),
            ("route", "    type: decision\n    dependencies: [check]\n"),
            ("small", "    dependencies: [route, check]\n"),
            ("large", "    dependencies: [route]\n"),
            ("after_large", "    dependencies: [large]\n"),
            (
                "finish",
                "    type: deferred_convergence\n    dependencies: [route, small, after_large]\n",
            ),
        ]);
        assert_eq!(problems(&yaml), vec![]);
    }

    #[test]
    fn a_root_decision_is_allowed() {
        assert_eq!(
            problems(&steps(&[("route", DEC), ("a", "    dependencies: [route]\n")])),
            vec![]
        );
    }

    #[test]
    fn a_decision_without_branches_is_rejected() {
        let ps = problems(&steps(&[
            ("a", ""),
            ("d", "    type: decision\n    dependencies: [a]\n"),
        ]));
        assert_eq!(
            the_problem(&ps, Some("d"), Some("type")).message,
            "a decision step needs at least one branch: no step depends on `d`"
        );
    }

    #[test]
    fn a_branch_of_two_decisions_is_rejected() {
        let ps = problems(&steps(&[
            ("d1", DEC),
            ("d2", DEC),
            ("x", "    dependencies: [d1, d2]\n"),
        ]));
        assert!(the_problem(&ps, Some("x"), Some("dependencies"))
            .message
            .contains("several decision steps (d1, d2)"));
    }

    #[test]
    fn a_branch_depending_on_a_step_after_its_decision_is_rejected() {
        let ps = problems(&steps(&[
            ("d", DEC),
            ("a", "    dependencies: [d]\n"),
            ("late", ""),
            ("b", "    dependencies: [d, late]\n"),
        ]));
        let p = the_problem(&ps, Some("b"), Some("dependencies"));
        assert!(p.message.contains("also depends on `late`"), "{p}");
    }

    #[test]
    fn a_convergence_that_follows_no_dynamic_step_is_rejected() {
        let ps = problems(&steps(&[
            ("a", ""),
            ("c", "    type: deferred_convergence\n    dependencies: [a]\n"),
        ]));
        assert!(the_problem(&ps, Some("c"), Some("type"))
            .message
            .contains("must follow a decision or batchable step"));
    }

    #[test]
    fn a_deferred_convergence_step_without_dependencies_is_rejected() {
        let ps = problems(&with_steps(&step("c", "    type: deferred_convergence\n")));
        assert_eq!(
            the_problem(&ps, Some("c"), Some("dependencies")).message,
            "a deferred_convergence step needs at least one dependency"
        );
    }

    const BATCH_OK: &[(&str, &str)] = &[
        (
            "plan",
            "    type: batchable\n    batch_config: { batch_size: 10, max_batches: 5 }\n",
        ),
        ("work", "    type: batch_worker\n    dependencies: [plan]\n"),
        ("sum", "    type: deferred_convergence\n    dependencies: [work]\n"),
    ];

    #[test]
    fn a_batchable_with_its_worker_and_convergence_is_valid() {
        assert_eq!(problems(&steps(BATCH_OK)), vec![]);
        let named = steps(BATCH_OK).replace("max_batches: 5 }", "max_batches: 5, worker_template: work }");
        assert_eq!(problems(&named), vec![]);
    }

    #[test]
    fn a_batchable_without_a_worker_is_rejected() {
        let ps = problems(&steps(&[("plan", "    type: batchable\n")]));
        assert!(the_problem(&ps, Some("plan"), Some("type"))
            .message
            .contains("needs a batch_worker step"));
    }

    #[test]
    fn a_batchable_with_two_workers_is_rejected() {
        let ps = problems(&steps(&[
            ("plan", "    type: batchable\n"),
            ("w1", "    type: batch_worker\n    dependencies: [plan]\n"),
            ("w2", "    type: batch_worker\n    dependencies: [plan]\n"),
        ]));
        assert!(the_problem(&ps, Some("plan"), Some("type"))
            .message
            .contains("has 2 (w1, w2)"));
    }

    #[test]
    fn a_batchable_worker_template_must_name_its_batch_worker() {
        let ps = problems(&steps(&[
            ("plain", ""),
            (
                "b1",
                "    type: batchable\n    batch_config: { worker_template: plain }\n",
            ),
            ("w1", "    type: batch_worker\n    dependencies: [b1]\n"),
            (
                "b2",
                "    type: batchable\n    batch_config: { worker_template: ghost }\n",
            ),
            ("w2", "    type: batch_worker\n    dependencies: [b2]\n"),
            ("b3", "    type: batchable\n    batch_config: { worker_template: w2 }\n"),
            ("w3", "    type: batch_worker\n    dependencies: [b3]\n"),
        ]));
        let field = Some("batch_config.worker_template");
        assert!(the_problem(&ps, Some("b1"), field)
            .message
            .contains("not a batch_worker"));
        assert!(the_problem(&ps, Some("b2"), field)
            .message
            .contains("unknown step `ghost`"));
        assert!(the_problem(&ps, Some("b3"), field)
            .message
            .contains("does not depend on `b3`"));
    }

    #[test]
    fn batch_sizes_and_limits_must_be_positive() {
        let yaml = steps(BATCH_OK).replace("batch_size: 10, max_batches: 5", "batch_size: 0, max_batches: 0");
        let ps = problems(&yaml);
        the_problem(&ps, Some("plan"), Some("batch_config.batch_size"));
        the_problem(&ps, Some("plan"), Some("batch_config.max_batches"));
    }

    #[test]
    fn a_batch_worker_must_depend_on_its_batchable_only() {
        let ps = problems(&steps(&[
            ("a", ""),
            ("w", "    type: batch_worker\n    dependencies: [a]\n"),
        ]));
        assert_eq!(
            the_problem(&ps, Some("w"), Some("dependencies")).message,
            "a batch_worker step depends on exactly one step, its batchable step"
        );
    }

    #[test]
    fn batch_settings_on_a_worker_or_a_standard_step_are_rejected() {
        let yaml = steps(BATCH_OK).replace(
            "    type: batch_worker\n",
            "    type: batch_worker\n    batch_config: { batch_size: 3 }\n",
        );
        let ps = problems(&yaml);
        assert!(the_problem(&ps, Some("work"), Some("batch_config"))
            .message
            .contains("belong on the batchable step"));
        let ps = problems(&steps(&[("a", "    batch_config: {}\n")]));
        the_problem(&ps, Some("a"), Some("batch_config"));
    }

    #[test]
    fn only_a_convergence_may_depend_on_a_batch_worker() {
        let mut list = BATCH_OK.to_vec();
        list.push(("peek", "    dependencies: [work]\n"));
        let ps = problems(&steps(&list));
        assert!(the_problem(&ps, Some("peek"), Some("dependencies"))
            .message
            .contains("only a deferred_convergence step can"));
    }
}
