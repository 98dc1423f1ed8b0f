//! Mermaid rendering of a template's DAG: one node per step (labelled with its
//! name, handler callable and, for a step routed elsewhere, its own namespace;
//! shaped by step type) and one edge per dependency, in declaration order so the
//! output is deterministic.

use super::{StepType, TaskTemplate};
use std::collections::HashMap;

/// Makes `s` safe inside a quoted Mermaid label.
fn escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
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
        let routed = s
            .namespace
            .as_deref()
            .map(|ns| format!("<br/>@ {}", escape(ns)))
            .unwrap_or_default();
        let label = format!("\"{}<br/>{}{routed}\"", escape(&s.name), escape(&s.handler.callable));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::load_file;
    use std::path::Path;

    #[test]
    fn the_diamond_renders_four_nodes_and_four_edges_in_order() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/diamond.yaml"));
        let t = load_file(path, None).unwrap().template;
        let expected = "graph TD\n\
            \x20   s0[\"start<br/>square\"]\n\
            \x20   s1[\"left<br/>square\"]\n\
            \x20   s2[\"right<br/>square\"]\n\
            \x20   s3[\"end<br/>multiply_square\"]\n\
            \x20   s0 --> s1\n\
            \x20   s0 --> s2\n\
            \x20   s1 --> s3\n\
            \x20   s2 --> s3\n";
        assert_eq!(to_mermaid(&t), expected);
    }

    #[test]
    fn step_types_get_distinct_shapes_and_quotes_are_escaped() {
        let yaml = "namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n\
            \x20 - { name: a, handler: { callable: 'say \"hi\"' } }\n\
            \x20 - { name: d, type: decision, dependencies: [a], handler: { callable: x } }\n\
            \x20 - { name: c, type: deferred_convergence, dependencies: [d], handler: { callable: x } }\n\
            \x20 - { name: b, type: batchable, handler: { callable: x } }\n\
            \x20 - { name: w, type: batch_worker, handler: { callable: x }, batch_config: {} }\n";
        let t: crate::template::TaskTemplate = serde_yaml_ng::from_str(yaml).unwrap();
        let m = to_mermaid(&t);
        assert!(m.contains("s0[\"a<br/>say #quot;hi#quot;\"]"), "{m}");
        assert!(m.contains("s1{\"d<br/>x\"}"), "{m}");
        assert!(m.contains("s2((\"c<br/>x\"))"), "{m}");
        assert!(m.contains("s3[[\"b<br/>x\"]]"), "{m}");
        assert!(m.contains("s4[/\"w<br/>x\"/]"), "{m}");
        assert_eq!(m.matches("-->").count(), 2);
    }

    #[test]
    fn a_step_with_its_own_namespace_shows_it() {
        let yaml = "namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n\
            \x20 - { name: a, handler: { callable: x } }\n\
            \x20 - { name: b, namespace: ns.ruby, dependencies: [a], handler: { callable: y } }\n";
        let t: crate::template::TaskTemplate = serde_yaml_ng::from_str(yaml).unwrap();
        let m = to_mermaid(&t);
        assert!(m.contains("s0[\"a<br/>x\"]"), "{m}");
        assert!(m.contains("s1[\"b<br/>y<br/>@ ns.ruby\"]"), "{m}");
    }
}
