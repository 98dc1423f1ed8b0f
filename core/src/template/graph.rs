//! The template's dependency graph: cycle detection, reporting each distinct
//! cycle once, in a deterministic order; and [`StepGraph`], the parent, child and
//! ancestor relations that the dynamic-step rules (validation, and the engine's
//! step expansion) are written in.

use super::model::{StepType, TaskTemplate};
use std::collections::{BTreeSet, HashMap};

/// The steps of a template as a graph: parents and children by index (first
/// declaration wins for a duplicated name; unknown dependencies are left out).
#[derive(Debug, Clone)]
pub struct StepGraph<'a> {
    /// The template.
    pub template: &'a TaskTemplate,
    index: HashMap<&'a str, usize>,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
}

impl<'a> StepGraph<'a> {
    /// The graph of `t`.
    pub fn new(t: &'a TaskTemplate) -> Self {
        let mut index = HashMap::new();
        for (i, s) in t.steps.iter().enumerate() {
            index.entry(s.name.as_str()).or_insert(i);
        }
        let n = t.steps.len();
        let (mut parents, mut children) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for (i, s) in t.steps.iter().enumerate() {
            for d in &s.dependencies {
                if let Some(&p) = index.get(d.as_str()) {
                    if p != i && !parents[i].contains(&p) {
                        parents[i].push(p);
                        children[p].push(i);
                    }
                }
            }
        }
        Self {
            template: t,
            index,
            parents,
            children,
        }
    }

    /// The index of the step called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The type of step `i`.
    pub fn step_type(&self, i: usize) -> StepType {
        self.template.steps[i].step_type
    }

    /// The name of step `i`.
    pub fn name(&self, i: usize) -> &'a str {
        &self.template.steps[i].name
    }

    /// The steps `i` depends on, in declaration order.
    pub fn parents(&self, i: usize) -> &[usize] {
        &self.parents[i]
    }

    /// The steps that depend on `i`, in declaration order.
    pub fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    /// Every step `i` depends on, directly or not (never `i` itself; safe on cycles).
    pub fn ancestors(&self, i: usize) -> BTreeSet<usize> {
        self.reach(i, &self.parents)
    }

    /// Every step that depends on `i`, directly or not (never `i` itself).
    pub fn descendants(&self, i: usize) -> BTreeSet<usize> {
        self.reach(i, &self.children)
    }

    fn reach(&self, i: usize, edges: &[Vec<usize>]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = edges[i].clone();
        while let Some(j) = todo.pop() {
            if j != i && seen.insert(j) {
                todo.extend(edges[j].iter().copied());
            }
        }
        seen
    }

    /// True for the steps whose outcome creates steps: decision and batchable.
    pub fn is_dynamic(&self, i: usize) -> bool {
        matches!(self.step_type(i), StepType::Decision | StepType::Batchable)
    }

    /// The batch_worker step a batchable step `i` clones: the one its
    /// `batch_config.worker_template` names, else the only batch_worker step that
    /// depends on it.
    pub fn worker_template(&self, i: usize) -> Option<usize> {
        let named = self.template.steps[i]
            .batch_config
            .as_ref()
            .and_then(|b| b.worker_template.as_deref());
        match named {
            Some(w) => self.index(w).filter(|&w| self.step_type(w) == StepType::BatchWorker),
            None => {
                let mut workers = self.children[i]
                    .iter()
                    .copied()
                    .filter(|&c| self.step_type(c) == StepType::BatchWorker);
                match (workers.next(), workers.next()) {
                    (Some(w), None) => Some(w),
                    _ => None,
                }
            }
        }
    }
}

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
