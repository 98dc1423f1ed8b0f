//! The verdict: compares the runs of each case with each other and prints the
//! tables (scenario × language × backend, and scenario × topology × backend for the
//! mixed scenarios) and, below them, every difference.
//!
//! Across runs, outcomes are compared with the values that differ by design masked
//! (`$any` in the expectation, the language that ran each step). The runs of a case fall into groups of equal
//! outcomes; the largest group (on a tie, the one with more runs matching the
//! expectation) is the reference, and every run outside it fails with its
//! differences from the reference's first run.

use crate::compare::{self, Difference};
use crate::group::{CaseRun, Topology};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Fills `cross_differences` of runs that disagree with the other runs of their case.
pub fn cross_compare(runs: &mut [CaseRun]) {
    let mut by_case: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        if r.observed.is_some() {
            by_case.entry((r.scenario.clone(), r.case.clone())).or_default().push(i);
        }
    }
    for indices in by_case.values() {
        let mut masks: Vec<String> = indices
            .iter()
            .flat_map(|&i| runs[i].language_specific.clone())
            .collect();
        masks.sort();
        masks.dedup();
        let docs: Vec<Value> = indices
            .iter()
            .map(|&i| compare::mask(runs[i].observed.as_ref().expect("filtered"), &masks))
            .collect();
        // Classes of equal outcomes (equality by value, as in the expectation check).
        let mut classes: Vec<Vec<usize>> = Vec::new();
        for (k, doc) in docs.iter().enumerate() {
            match classes
                .iter_mut()
                .find(|c| compare::compare(&docs[c[0]], doc).is_empty())
            {
                Some(c) => c.push(k),
                None => classes.push(vec![k]),
            }
        }
        if classes.len() < 2 {
            continue;
        }
        let score = |c: &Vec<usize>| {
            let matching = c.iter().filter(|&&k| runs[indices[k]].differences.is_empty()).count();
            (c.len(), matching)
        };
        let best = (0..classes.len())
            .max_by(|&a, &b| score(&classes[a]).cmp(&score(&classes[b])).then(b.cmp(&a)))
            .expect("at least two classes");
        let reference = classes[best][0];
        let reference_label = runs[indices[reference]].column();
        for (n, class) in classes.iter().enumerate() {
            if n == best {
                continue;
            }
            for &k in class {
                let run = &mut runs[indices[k]];
                run.cross_differences = compare::compare(&docs[reference], &docs[k]);
                run.cross_reference = Some(reference_label.clone());
            }
        }
    }
}

/// The report for all runs: tables, then details. Returns the text and whether
/// every run passed.
pub fn render(runs: &[CaseRun]) -> (String, bool) {
    let mut out = String::new();
    let (mixed, single): (Vec<&CaseRun>, Vec<&CaseRun>) = runs.iter().partition(|r| r.topology.runs_mixed());
    if !single.is_empty() {
        table(&mut out, "scenario × language × backend", &single);
    }
    if !mixed.is_empty() {
        table(&mut out, "mixed-language scenarios × topology × backend", &mixed);
    }
    let failed: Vec<&CaseRun> = runs.iter().filter(|r| !r.passed()).collect();
    let mut errors_shown: Vec<(String, &str)> = Vec::new();
    for r in &failed {
        let _ = writeln!(out, "\nFAIL {}/{} · {}", r.scenario, r.case, r.column());
        if let Some(e) = &r.error {
            // A group's error (a worker that would not start) is the same for all its cases.
            let key = (r.column(), e.as_str());
            if errors_shown.contains(&key) {
                let _ = writeln!(out, "  error: as above ({})", r.column());
            } else {
                let _ = writeln!(out, "  error: {}", indent(e));
                errors_shown.push(key);
            }
        }
        if !r.differences.is_empty() {
            let _ = writeln!(out, "  differs from the expectation:");
            for d in &r.differences {
                let _ = writeln!(out, "    {}", indent(&d.to_string()));
            }
        }
        if !r.cross_differences.is_empty() {
            let reference = r.cross_reference.as_deref().unwrap_or("?");
            let _ = writeln!(
                out,
                "  differs from the other runs of this case (shown against {reference}):"
            );
            for d in &r.cross_differences {
                let _ = writeln!(out, "    {}", indent(&d.to_string()));
            }
        }
        for n in &r.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    let mut notes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.passed()) {
        for n in &r.notes {
            notes
                .entry(n.as_str())
                .or_default()
                .push(format!("{}/{}", r.scenario, r.column()));
        }
    }
    for (note, at) in notes {
        let _ = writeln!(out, "\nnote ({} run(s), e.g. {}): {note}", at.len(), at[0]);
    }
    let passed = runs.len() - failed.len();
    let _ = writeln!(
        out,
        "\nconformance: {} run(s), {passed} passed, {} failed",
        runs.len(),
        failed.len()
    );
    (out, failed.is_empty() && !runs.is_empty())
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

fn table(out: &mut String, title: &str, runs: &[&CaseRun]) {
    let mut columns: Vec<(Topology, crate::Backend)> = runs.iter().map(|r| (r.topology.clone(), r.backend)).collect();
    columns.sort();
    columns.dedup();
    let mut rows: Vec<(String, String)> = Vec::new();
    for r in runs {
        let key = (r.scenario.clone(), r.case.clone());
        if !rows.contains(&key) {
            rows.push(key);
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let header: Vec<String> = columns.iter().map(|(t, b)| format!("{}/{b}", t.label())).collect();
    let names: Vec<String> = rows.iter().map(|(s, c)| format!("{s}/{c}")).collect();
    let first = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario/case".len());
    let _ = writeln!(out, "\n{title}\n");
    let _ = write!(out, "{:<first$}", "scenario/case");
    for h in &header {
        let _ = write!(out, "  {h}");
    }
    let _ = writeln!(out);
    for ((scenario, case), name) in rows.iter().zip(&names) {
        let _ = write!(out, "{name:<first$}");
        for ((topology, backend), h) in columns.iter().zip(&header) {
            let cell = runs
                .iter()
                .find(|r| {
                    &r.scenario == scenario && &r.case == case && &r.topology == topology && r.backend == *backend
                })
                .map(|r| match (&r.error, r.passed()) {
                    (Some(_), _) => "ERROR",
                    (None, true) => "pass",
                    (None, false) => "FAIL",
                })
                .unwrap_or("-");
            let _ = write!(out, "  {cell:<width$}", width = h.chars().count());
        }
        let _ = writeln!(out);
    }
}

/// Differences of a run, for tests and callers that want them as lines.
pub fn difference_lines(run: &CaseRun) -> Vec<String> {
    run.differences
        .iter()
        .chain(&run.cross_differences)
        .map(Difference::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Language};
    use serde_json::json;

    fn run(language: Language, value: i64, matches: bool) -> CaseRun {
        CaseRun {
            scenario: "linear".into(),
            case: "n6".into(),
            topology: Topology::Single(language),
            backend: Backend::Sqlite,
            observed: Some(
                json!({"task": "complete", "steps": {"s": {"result": {"value": value}, "ran_by": language.name()}}}),
            ),
            language_specific: vec!["/steps/s/ran_by".into()],
            differences: if matches {
                vec![]
            } else {
                vec![Difference {
                    path: "steps.s.result.value".into(),
                    expected: "36".into(),
                    observed: value.to_string(),
                }]
            },
            cross_differences: vec![],
            cross_reference: None,
            notes: vec![],
            error: None,
        }
    }

    #[test]
    fn the_run_that_disagrees_with_the_others_fails_against_the_majority() {
        let mut runs = vec![
            run(Language::Rust, 36, true),
            run(Language::Python, 37, false),
            run(Language::Ruby, 36, true),
            run(Language::Typescript, 36, true),
        ];
        cross_compare(&mut runs);
        assert!(runs[0].passed() && runs[2].passed() && runs[3].passed());
        assert_eq!(runs[1].cross_reference.as_deref(), Some("rust/sqlite"));
        assert_eq!(
            difference_lines(&runs[1])[1],
            "steps.s.result.value: expected 36, got 37"
        );
        let (text, ok) = render(&runs);
        assert!(!ok);
        assert!(
            text.contains("linear/n6      pass         FAIL           pass"),
            "{text}"
        );
        assert!(text.contains("FAIL linear/n6 · python/sqlite"), "{text}");
        assert!(text.contains("steps.s.result.value: expected 36, got 37"), "{text}");
    }

    #[test]
    fn runs_that_differ_only_where_languages_may_differ_agree() {
        let mut runs = vec![run(Language::Rust, 36, true), run(Language::Python, 36, true)];
        cross_compare(&mut runs);
        assert!(runs.iter().all(CaseRun::passed));
        let (text, ok) = render(&runs);
        assert!(ok, "{text}");
        assert!(text.contains("2 run(s), 2 passed, 0 failed"), "{text}");
    }
}
