//! The expansion rule on templates shaped like the ones users write: which steps
//! are created, what they wait for, and what is refused.

use super::*;
use crate::contract::{BatchOutcome, CursorConfig, DecisionOutcome};
use crate::orchestration::task_request::initial_steps;
use crate::template::parse_str;
use serde_json::json;

/// A snapshot of a new task of `yaml`: its initial steps, `complete` except those
/// listed in `running` (in_progress), with their edges.
fn snapshot(yaml: &str, running: &[&str]) -> TaskSnapshot {
    let template = parse_str(yaml, "t.yaml", None).unwrap().template;
    let included = initial_steps(&template);
    let mut steps = Vec::new();
    for (s, _) in template.steps.iter().zip(&included).filter(|(_, inc)| **inc) {
        steps.push(ExistingStep {
            step_uuid: Uuid::now_v7(),
            name: s.name.clone(),
            template_step_name: s.name.clone(),
            state: if running.contains(&s.name.as_str()) {
                StepState::InProgress
            } else {
                StepState::Complete
            },
        });
    }
    let mut edges = HashSet::new();
    for s in &template.steps {
        for d in &s.dependencies {
            if let (Some(p), Some(c)) = (find(&steps, d), find(&steps, &s.name)) {
                edges.insert((p, c));
            }
        }
    }
    TaskSnapshot {
        template,
        steps,
        edges,
        decided: HashSet::new(),
    }
}

fn find(steps: &[ExistingStep], name: &str) -> Option<Uuid> {
    steps.iter().find(|s| s.name == name).map(|s| s.step_uuid)
}

fn uuid(s: &TaskSnapshot, name: &str) -> Uuid {
    find(&s.steps, name).unwrap_or_else(|| panic!("no step {name}"))
}

/// Expands step `x` of the snapshot with `outcome`.
fn run(s: &mut TaskSnapshot, x: &str, outcome: &DynamicOutcome) -> Result<ExpansionPlan, Refusal> {
    let x = uuid(s, x);
    expand(s, x, outcome)
}

fn choose(names: &[&str]) -> DynamicOutcome {
    DynamicOutcome::Decision(DecisionOutcome::CreateSteps {
        step_names: names.iter().map(|n| n.to_string()).collect(),
    })
}

fn created(plan: &ExpansionPlan) -> Vec<(&str, u32)> {
    plan.steps
        .iter()
        .map(|p| (p.step.name.as_str(), p.pending_parents))
        .collect()
}

/// The names of the parents `plan` gives `child`.
fn parents_of(s: &TaskSnapshot, plan: &ExpansionPlan, child: &str) -> Vec<String> {
    let c = uuid(s, child);
    let mut v: Vec<String> = plan
        .edges
        .iter()
        .filter(|(_, ch)| *ch == c)
        .map(|(p, _)| s.steps.iter().find(|x| x.step_uuid == *p).unwrap().name.clone())
        .collect();
    v.sort();
    v
}

const APPROVAL: &str = "namespace: ns\nname: approval\nversion: 1.0.0\nsteps:\n\
  - { name: check, handler: { callable: x } }\n\
  - { name: route, type: decision, dependencies: [check], handler: { callable: x } }\n\
  - { name: auto, dependencies: [route], handler: { callable: x } }\n\
  - { name: manager, dependencies: [route, check], handler: { callable: x } }\n\
  - { name: finance, dependencies: [route], handler: { callable: x } }\n\
  - { name: audit, dependencies: [finance], handler: { callable: x } }\n\
  - { name: finish, type: deferred_convergence, dependencies: [auto, manager, audit], handler: { callable: x } }\n";

#[test]
fn a_task_starts_with_the_steps_before_its_decision() {
    let s = snapshot(APPROVAL, &["route"]);
    let names: Vec<&str> = s.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["check", "route"]);
}

#[test]
fn a_chosen_branch_and_the_convergence_waiting_for_it_are_created() {
    let mut s = snapshot(APPROVAL, &["route"]);
    let route = uuid(&s, "route");
    let plan = expand(&mut s, route, &choose(&["manager"])).unwrap();
    assert_eq!(created(&plan), [("manager", 1), ("finish", 2)]);
    assert_eq!(parents_of(&s, &plan, "manager"), ["check", "route"]);
    // Only the branch that exists, plus the decision itself: intersection semantics.
    assert_eq!(parents_of(&s, &plan, "finish"), ["manager", "route"]);
    assert!(plan.bumps.is_empty());
    assert!(s.decided.contains(&route));
}

#[test]
fn steps_after_a_chosen_branch_are_created_with_it() {
    let mut s = snapshot(APPROVAL, &["route"]);
    let plan = run(&mut s, "route", &choose(&["finance", "auto", "finance"])).unwrap();
    assert_eq!(
        created(&plan),
        [("auto", 1), ("finance", 1), ("audit", 1), ("finish", 3)]
    );
    assert_eq!(parents_of(&s, &plan, "audit"), ["finance"]);
    assert_eq!(parents_of(&s, &plan, "finish"), ["audit", "auto", "route"]);
}

#[test]
fn no_branches_creates_nothing_unless_a_convergence_lists_the_decision() {
    let mut s = snapshot(APPROVAL, &["route"]);
    let none = DynamicOutcome::Decision(DecisionOutcome::NoBranches {});
    let plan = run(&mut s, "route", &none).unwrap();
    assert!(plan.steps.is_empty() && plan.edges.is_empty());

    let listed = APPROVAL.replace(
        "dependencies: [auto, manager, audit]",
        "dependencies: [route, auto, manager, audit]",
    );
    let mut s = snapshot(&listed, &["route"]);
    let plan = run(&mut s, "route", &none).unwrap();
    assert_eq!(created(&plan), [("finish", 1)]);
    assert_eq!(parents_of(&s, &plan, "finish"), ["route"]);
}

#[test]
fn a_name_that_is_not_a_branch_is_refused_and_nothing_is_planned() {
    let mut s = snapshot(APPROVAL, &["route"]);
    let before = s.steps.len();
    let route = uuid(&s, "route");
    for (names, words) in [
        (
            vec!["auto", "ghost"],
            "`ghost`, which is not a step of template `ns/approval@1.0.0`",
        ),
        (
            vec!["audit"],
            "`audit`, which is not one of its branches (its branches: auto, manager, finance)",
        ),
        (vec!["finish"], "`finish`, a deferred_convergence step"),
    ] {
        let r = expand(&mut s, route, &choose(&names)).unwrap_err();
        assert_eq!(r.error_type, INVALID_DECISION);
        assert!(r.message.contains(words), "{}", r.message);
        assert_eq!(s.steps.len(), before, "a refused outcome plans nothing");
        assert!(!s.decided.contains(&route));
    }
}

#[test]
fn a_batch_outcome_on_a_decision_step_is_refused() {
    let mut s = snapshot(APPROVAL, &["route"]);
    let r = run(&mut s, "route", &DynamicOutcome::Batch(BatchOutcome::NoBatches {})).unwrap_err();
    assert_eq!(r.error_type, INVALID_BATCHES);
    assert!(r.message.contains("is a decision step"), "{}", r.message);
}

const CSV: &str = "namespace: ns\nname: csv\nversion: 1.0.0\nsteps:\n\
  - { name: analyze, type: batchable, handler: { callable: x }, batch_config: { batch_size: 200, max_batches: 6 } }\n\
  - { name: work, type: batch_worker, dependencies: [analyze], handler: { callable: x, initialization: { chunk: 50 } } }\n\
  - { name: total, type: deferred_convergence, dependencies: [work], handler: { callable: x } }\n\
  - { name: report, dependencies: [total], handler: { callable: x } }\n";

fn batches(total: u64, size: Option<u64>) -> DynamicOutcome {
    DynamicOutcome::Batch(BatchOutcome::CreateBatches {
        total_items: Some(total),
        batch_size: size,
        cursor_configs: None,
    })
}

#[test]
fn a_batch_outcome_creates_one_worker_per_range_and_the_convergence_after_them() {
    let mut s = snapshot(CSV, &["analyze"]);
    let plan = run(&mut s, "analyze", &batches(1000, None)).unwrap();
    assert_eq!(
        created(&plan),
        [
            ("work_001", 1),
            ("work_002", 1),
            ("work_003", 1),
            ("work_004", 1),
            ("work_005", 1),
            ("total", 6),
            ("report", 1)
        ]
    );
    let w3 = &plan.steps[2].step;
    assert_eq!(
        (w3.template_step_name.as_str(), w3.step_type.as_str()),
        ("work", "batch_worker")
    );
    assert_eq!(
        w3.handler_initialization,
        json!({"chunk": 50, "cursor": {"batch_id": "003", "start_cursor": 400, "end_cursor": 600}})
    );
    assert_eq!(
        parents_of(&s, &plan, "total"),
        ["analyze", "work_001", "work_002", "work_003", "work_004", "work_005"]
    );
    assert_eq!(parents_of(&s, &plan, "report"), ["total"]);
}

#[test]
fn explicit_ranges_keep_their_ids_and_bounds() {
    let mut s = snapshot(CSV, &["analyze"]);
    let outcome = DynamicOutcome::Batch(BatchOutcome::CreateBatches {
        total_items: None,
        batch_size: None,
        cursor_configs: Some(vec![
            CursorConfig {
                batch_id: "east".into(),
                start_cursor: 0,
                end_cursor: 7,
            },
            CursorConfig {
                batch_id: "west".into(),
                start_cursor: 7,
                end_cursor: 9,
            },
        ]),
    });
    let plan = run(&mut s, "analyze", &outcome).unwrap();
    let names: Vec<&str> = plan.steps.iter().map(|p| p.step.name.as_str()).collect();
    assert_eq!(names, ["work_east", "work_west", "total", "report"]);
    assert_eq!(plan.steps[1].step.handler_initialization["cursor"]["end_cursor"], 9);
}

#[test]
fn more_batches_than_the_template_allows_are_refused() {
    let mut s = snapshot(CSV, &["analyze"]);
    let r = run(&mut s, "analyze", &batches(1000, Some(10))).unwrap_err();
    assert_eq!(r.error_type, TOO_MANY_BATCHES);
    assert!(
        r.message.contains("100 batches") && r.message.contains("max_batches (6)"),
        "{}",
        r.message
    );
    assert_eq!(s.steps.len(), 1);
}

#[test]
fn bad_or_repeated_batch_ids_are_refused() {
    for ids in [vec!["a/b"], vec!["x", "x"]] {
        let mut s = snapshot(CSV, &["analyze"]);
        let configs = ids
            .iter()
            .map(|id| CursorConfig {
                batch_id: id.to_string(),
                start_cursor: 0,
                end_cursor: 1,
            })
            .collect();
        let outcome = DynamicOutcome::Batch(BatchOutcome::CreateBatches {
            total_items: None,
            batch_size: None,
            cursor_configs: Some(configs),
        });
        let r = run(&mut s, "analyze", &outcome).unwrap_err();
        assert_eq!(r.error_type, INVALID_BATCHES, "{}", r.message);
    }
}

#[test]
fn no_batches_creates_the_convergence_waiting_only_for_the_batchable_step() {
    let mut s = snapshot(CSV, &["analyze"]);
    let plan = run(&mut s, "analyze", &DynamicOutcome::Batch(BatchOutcome::NoBatches {})).unwrap();
    assert_eq!(created(&plan), [("total", 1), ("report", 1)]);
    assert_eq!(parents_of(&s, &plan, "total"), ["analyze"]);
}

/// d1 → {a, b}; a → d2 → {p, q} → c2 (convergence); c1 converges c2 and b.
const NESTED: &str = "namespace: ns\nname: nested\nversion: 1.0.0\nsteps:\n\
  - { name: d1, type: decision, handler: { callable: x } }\n\
  - { name: a, dependencies: [d1], handler: { callable: x } }\n\
  - { name: b, dependencies: [d1], handler: { callable: x } }\n\
  - { name: d2, type: decision, dependencies: [a], handler: { callable: x } }\n\
  - { name: p, dependencies: [d2], handler: { callable: x } }\n\
  - { name: q, dependencies: [d2], handler: { callable: x } }\n\
  - { name: c2, type: deferred_convergence, dependencies: [p, q], handler: { callable: x } }\n\
  - { name: c1, type: deferred_convergence, dependencies: [c2, b], handler: { callable: x } }\n";

#[test]
fn a_convergence_also_waits_for_undecided_decisions_that_may_create_its_dependencies() {
    let mut s = snapshot(NESTED, &["d1"]);
    let plan = run(&mut s, "d1", &choose(&["a", "b"])).unwrap();
    assert_eq!(created(&plan), [("a", 1), ("b", 1), ("d2", 1), ("c1", 3)]);
    // c2 does not exist yet, and d2 may still create it: c1 waits for d2.
    assert_eq!(parents_of(&s, &plan, "c1"), ["b", "d1", "d2"]);

    // d2 decides later: c2 is created, and c1 (still pending) now waits for it.
    let d2 = uuid(&s, "d2");
    for st in s.steps.iter_mut() {
        st.state = if st.step_uuid == d2 {
            StepState::InProgress
        } else if st.name == "c1" {
            StepState::Pending
        } else {
            StepState::Complete
        };
    }
    let plan = expand(&mut s, d2, &choose(&["p"])).unwrap();
    assert_eq!(created(&plan), [("p", 1), ("c2", 2)]);
    assert_eq!(parents_of(&s, &plan, "c2"), ["d2", "p"]);
    assert_eq!(plan.bumps, [(uuid(&s, "c1"), 1)]);
    assert!(plan.edges.contains(&(uuid(&s, "c2"), uuid(&s, "c1"))));
}

#[test]
fn a_convergence_does_not_wait_for_branches_a_decided_step_left_out() {
    let mut s = snapshot(NESTED, &["d1"]);
    let plan = run(&mut s, "d1", &choose(&["b"])).unwrap();
    // a (and with it d2, p, q, c2) will never exist: c1 waits for b and d1 only.
    assert_eq!(created(&plan), [("b", 1), ("c1", 2)]);
    assert_eq!(parents_of(&s, &plan, "c1"), ["b", "d1"]);
}

#[test]
fn a_created_step_runs_in_its_own_namespace() {
    let yaml = APPROVAL.replace(
        "{ name: manager, dependencies: [route, check], handler: { callable: x } }",
        "{ name: manager, namespace: managers, dependencies: [route, check], handler: { callable: x } }",
    );
    let mut s = snapshot(&yaml, &["route"]);
    let plan = run(&mut s, "route", &choose(&["manager"])).unwrap();
    let ns: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .map(|p| (p.step.name.as_str(), p.step.namespace.as_str()))
        .collect();
    assert_eq!(ns, [("manager", "managers"), ("finish", "ns")]);
}
