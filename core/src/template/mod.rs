//! Task templates: the YAML model ([`model`]), loading with every problem reported
//! at once ([`load`], [`validate`]), the registry that resolves
//! `namespace/name[@version]` ([`registry`], the TemplateCache actor's store), and
//! Mermaid rendering ([`mermaid`]). The structural pass over raw YAML lives in
//! `structure`, cycle detection in [`graph`].

pub mod graph;
pub mod load;
pub mod mermaid;
pub mod model;
pub mod registry;
mod structure;
pub mod validate;
mod validate_dynamic;

pub use load::{load_file, parse_str, LoadedTemplate, SharedValidator};
pub use model::*;
pub use registry::{TemplateError, TemplateRegistry};
pub use validate::{TemplateErrors, TemplateProblem};

/// Answers whether a handler callable is known; lets validation report unknown
/// handlers when the worker's registry is at hand.
pub trait HandlerLookup {
    /// True when `callable` names a registered handler.
    fn has_handler(&self, callable: &str) -> bool;
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the template tests.
    use super::{parse_str, TemplateProblem};

    /// A minimal valid template header followed by `steps` (YAML list items).
    pub fn with_steps(steps: &str) -> String {
        format!("namespace: ns\nname: t\nversion: 1.0.0\nsteps:\n{steps}")
    }

    /// Every problem `parse_str` reports for `yaml` (empty when it loads).
    pub fn problems(yaml: &str) -> Vec<TemplateProblem> {
        match parse_str(yaml, "t.yaml", None) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    /// The one problem for `step`/`field`; panics listing all problems otherwise.
    pub fn the_problem<'a>(ps: &'a [TemplateProblem], step: Option<&str>, field: Option<&str>) -> &'a TemplateProblem {
        let hits: Vec<&TemplateProblem> = ps
            .iter()
            .filter(|p| p.step.as_deref() == step && p.field.as_deref() == field)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "expected one problem at step {step:?} field {field:?}, got: {ps:#?}"
        );
        assert!(ps.iter().all(|p| p.file == "t.yaml"));
        hits[0]
    }
}
