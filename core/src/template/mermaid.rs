//! Mermaid rendering of a template's DAG (stub: being written).

use super::TaskTemplate;

/// The DAG as a Mermaid `graph TD`.
pub fn to_mermaid(t: &TaskTemplate) -> String {
    let mut out = String::from("graph TD\n");
    for s in &t.steps {
        for d in &s.dependencies {
            out.push_str(&format!("    {d} --> {}\n", s.name));
        }
    }
    out
}
