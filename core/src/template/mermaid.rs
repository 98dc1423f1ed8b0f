//! Mermaid rendering of a template's DAG: one node per step (labelled with its
//! name and handler callable, shaped by step type) and one edge per dependency,
//! in declaration order so the output is deterministic.

use super::{StepType, TaskTemplate};
use std::collections::HashMap;

/// Makes `s` safe inside a quoted Mermaid label.
fn escape(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// The DAG as a Mermaid `graph TD`. Nodes are `s0`, `s1`, … in declaration
/// order; shapes: standard `[ ]`, decision `{ }` (rhombus), deferred
/// convergence `(( ))` (circle), batchable `[[ ]]` (subroutine) and batch worker
/// `[/ /]` (parallelogram). Edges run from dependency to dependent; a
/// dependency on an unknown step is left out.
pub fn to_mermaid(t: &TaskTemplate) -> String {
    let mut ids: HashMap<&str, String> = HashMap::new();
    let mut out = String::from("graph TD\n");
    for (i, s) in t.steps.iter().enumerate() {
        let id = format!("s{i}");
        let label = format!(
            "\"{}<br/>{}\"",
            escape(&s.name),
            escape(&s.handler.callable)
        );
        let (open, close) = match s.step_type {
            StepType::Standard => ("[", "]"),
            StepType::Decision => ("{", "}"),
            StepType::DeferredConvergence => ("((", "))"),
            StepType::Batchable => ("[[", "]]"),
            StepType::BatchWorker => ("[/", "/]"),
        };
        out.push_str(&format!("    {id}{open}{label}{close}\n"));
        ids.entry(s.name.as_str()).or_insert(id);
    }
    for (i, s) in t.steps.iter().enumerate() {
        for d in &s.dependencies {
            if let Some(from) = ids.get(d.as_str()) {
                out.push_str(&format!("    {from} --> s{i}\n"));
            }
        }
    }
    out
}
