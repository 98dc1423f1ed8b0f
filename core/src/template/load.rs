//! Loading a template from YAML text or a file (stub: being written).

use super::{HandlerLookup, TaskTemplate, TemplateErrors};
use serde_json::Value;
use std::path::Path;

/// A parsed and validated template with its content hash and compiled input schema.
#[derive(Debug)]
pub struct LoadedTemplate {
    /// The template.
    pub template: TaskTemplate,
    /// SHA-256 (hex) of the canonical JSON of `template`.
    pub content_hash: String,
    /// Where it came from (a path, or `<inline>`).
    pub origin: String,
}

impl LoadedTemplate {
    /// Checks a task context against the input schema; the errors name each problem.
    pub fn validate_context(&self, _context: &Value) -> Result<(), Vec<String>> {
        Ok(())
    }
    /// The resolved template as JSON (what is persisted with each task).
    pub fn definition_json(&self) -> Value {
        serde_json::to_value(&self.template).unwrap_or(Value::Null)
    }
    /// Builds a loaded template from an already-validated model.
    pub fn from_template(template: TaskTemplate, origin: &str) -> Result<Self, TemplateErrors> {
        let hash = crate::canonical::canonical_sha256(&serde_json::to_value(&template).unwrap_or(Value::Null));
        Ok(Self { template, content_hash: hash, origin: origin.to_string() })
    }
}

/// Parses and validates YAML text.
pub fn parse_str(source: &str, origin: &str, handlers: Option<&dyn HandlerLookup>) -> Result<LoadedTemplate, TemplateErrors> {
    let _ = handlers;
    let t: TaskTemplate = serde_yaml_ng::from_str(source).map_err(|e| TemplateErrors::single(origin, e.to_string()))?;
    LoadedTemplate::from_template(t, origin)
}

/// Reads, parses and validates a YAML file.
pub fn load_file(path: &Path, handlers: Option<&dyn HandlerLookup>) -> Result<LoadedTemplate, TemplateErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TemplateErrors::single(&origin, e.to_string()))?;
    parse_str(&text, &origin, handlers)
}
