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

pub use load::{load_file, parse_str, LoadedTemplate};
pub use model::*;
pub use registry::{TemplateError, TemplateRegistry};
pub use validate::{TemplateErrors, TemplateProblem};

/// Answers whether a handler callable is known; lets validation report unknown
/// handlers when the worker's registry is at hand.
pub trait HandlerLookup {
    /// True when `callable` names a registered handler.
    fn has_handler(&self, callable: &str) -> bool;
}
