//! The template's dependency graph: cycle detection, reporting each distinct
//! cycle once, in a deterministic order.

use super::model::TaskTemplate;
use std::collections::{BTreeSet, HashMap};

/// The distinct cycles among the template's steps that a depth-first walk in
/// declaration order finds (at least one in every group of mutually dependent
/// steps, each reported once), each as the step names in
/// execution order (a dependency before its dependent) with the first name
/// repeated at the end: `["a", "b", "c", "a"]` means b depends on a, c on b and
/// a on c. Each cycle starts at its earliest-declared step; cycles are listed in
/// the order a depth-first walk in declaration order finds them. Self-dependencies
/// and unknown dependencies are left to the other checks.
pub fn find_cycles(t: &TaskTemplate) -> Vec<Vec<String>> {
    // First declaration wins for duplicated names (reported elsewhere).
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in t.steps.iter().enumerate() {
        index.entry(s.name.as_str()).or_insert(i);
    }
    let n = t.steps.len();
    // Edges in execution direction: dependency -> dependent.
    let mut next: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for (i, s) in t.steps.iter().enumerate() {
        if index[s.name.as_str()] != i {
            continue;
        }
        for d in &s.dependencies {
            if let Some(&j) = index.get(d.as_str()) {
                if j != i {
                    next[j].insert(i);
                }
            }
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut seen: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut cycles = Vec::new();
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, successors still to visit).
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, next[start].iter().copied().collect())];
        mark[start] = Mark::OnStack;
        while let Some((node, todo)) = stack.last_mut() {
            let node = *node;
            if todo.is_empty() {
                mark[node] = Mark::Done;
                stack.pop();
                continue;
            }
            let succ = todo.remove(0);
            match mark[succ] {
                Mark::New => {
                    mark[succ] = Mark::OnStack;
                    stack.push((succ, next[succ].iter().copied().collect()));
                }
                Mark::OnStack => {
                    let from = stack.iter().position(|(v, _)| *v == succ).expect("on stack");
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|(v, _)| *v).collect();
                    let min_pos = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                    cycle.rotate_left(min_pos);
                    if seen.insert(cycle.clone()) {
                        cycles.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
    }
    cycles
        .into_iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&i| t.steps[i].name.clone()).collect();
            names.push(names[0].clone());
            names
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(steps: &[(&str, &[&str])]) -> TaskTemplate {
        let mut yaml = String::from("namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n");
        for (name, deps) in steps {
            yaml.push_str(&format!(
                "  - name: {name}\n    handler: {{ callable: x }}\n    dependencies: [{}]\n",
                deps.join(", ")
            ));
        }
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    #[test]
    fn an_acyclic_graph_has_no_cycles() {
        let t = template(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        assert!(find_cycles(&t).is_empty());
    }

    #[test]
    fn a_cycle_starts_at_its_earliest_declared_step_in_execution_order() {
        // c runs before b, b before a, a before c.
        let t = template(&[("x", &[]), ("a", &["b"]), ("b", &["c"]), ("c", &["a", "x"])]);
        assert_eq!(find_cycles(&t), vec![vec!["a", "c", "b", "a"]]);
    }

    #[test]
    fn two_separate_cycles_are_each_reported_once_in_a_stable_order() {
        let t = template(&[
            ("p", &["q"]),
            ("q", &["p"]),
            ("a", &["b"]),
            ("b", &["a"]),
            ("ok", &["a"]),
        ]);
        let first = find_cycles(&t);
        assert_eq!(first, vec![vec!["p", "q", "p"], vec!["a", "b", "a"]]);
        assert_eq!(find_cycles(&t), first);
    }

    #[test]
    fn self_and_unknown_dependencies_are_not_cycles_here() {
        let t = template(&[("a", &["a", "ghost"])]);
        assert!(find_cycles(&t).is_empty());
    }
}
