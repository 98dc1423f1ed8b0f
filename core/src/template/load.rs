//! Loading a template from YAML text or a file: YAML parsing (with line and
//! column on syntax errors), the structural pass, semantic validation, the
//! content hash and the compiled input-schema validator.

use super::structure;
use super::validate::{check_template, compile_schema, Problems};
use super::{HandlerLookup, TaskTemplate, TemplateErrors};
use serde_json::Value;
use std::path::Path;

/// A parsed and validated template with its content hash and compiled input schema.
pub struct LoadedTemplate {
    /// The template.
    pub template: TaskTemplate,
    /// SHA-256 (hex) of the canonical JSON of `template`.
    pub content_hash: String,
    /// Where it came from (a path, or `<inline>`).
    pub origin: String,
    /// The compiled `input_schema`, when the template has one.
    schema: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for LoadedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedTemplate")
            .field("template", &self.template)
            .field("content_hash", &self.content_hash)
            .field("origin", &self.origin)
            .field("has_schema", &self.schema.is_some())
            .finish()
    }
}

impl LoadedTemplate {
    /// Checks a task context against the input schema; the errors name each
    /// problem as `INSTANCE_PATH: MESSAGE` (e.g. `/n: "x" is not of type
    /// "integer"`; the path is empty for the whole context). Always Ok when the
    /// template has no input schema.
    pub fn validate_context(&self, context: &Value) -> Result<(), Vec<String>> {
        let Some(v) = &self.schema else {
            return Ok(());
        };
        let errors: Vec<String> = v
            .iter_errors(context)
            .map(|e| format!("{}: {}", e.instance_path(), e))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The resolved template as JSON (what is persisted with each task).
    pub fn definition_json(&self) -> Value {
        serde_json::to_value(&self.template).unwrap_or(Value::Null)
    }

    /// Builds a loaded template from a typed model, running the full semantic
    /// validation (without a handler registry).
    pub fn from_template(template: TaskTemplate, origin: &str) -> Result<Self, TemplateErrors> {
        Self::checked(template, origin, None)
    }

    fn checked(
        template: TaskTemplate,
        origin: &str,
        handlers: Option<&dyn HandlerLookup>,
    ) -> Result<Self, TemplateErrors> {
        let mut problems = Problems::new(origin);
        check_template(&template, handlers, &mut problems);
        if !problems.list.is_empty() {
            return Err(TemplateErrors(problems.list));
        }
        Ok(Self::assemble(template, origin))
    }

    /// Hashes and compiles a template already known to be valid.
    fn assemble(template: TaskTemplate, origin: &str) -> Self {
        let json = serde_json::to_value(&template).unwrap_or(Value::Null);
        let content_hash = crate::canonical::canonical_sha256(&json);
        // Validation compiled the schema already, so this cannot fail here.
        let schema = template
            .input_schema
            .as_ref()
            .and_then(|s| compile_schema(s).ok());
        Self {
            template,
            content_hash,
            origin: origin.to_string(),
            schema,
        }
    }
}

/// Parses and validates YAML text, reporting every problem found (unknown keys,
/// wrongly typed fields in every step, and every semantic problem) at once.
pub fn parse_str(
    source: &str,
    origin: &str,
    handlers: Option<&dyn HandlerLookup>,
) -> Result<LoadedTemplate, TemplateErrors> {
    let raw: Value = serde_yaml_ng::from_str(source).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        TemplateErrors::single(origin, format!("malformed YAML{at}: {e}"))
    })?;
    let mut problems = Problems::new(origin);
    let Some(template) = structure::build(raw, &mut problems) else {
        return Err(TemplateErrors(problems.list));
    };
    check_template(&template, handlers, &mut problems);
    if !problems.list.is_empty() {
        return Err(TemplateErrors(problems.list));
    }
    Ok(LoadedTemplate::assemble(template, origin))
}

/// Reads, parses and validates a YAML file; problems name the file by its path.
pub fn load_file(
    path: &Path,
    handlers: Option<&dyn HandlerLookup>,
) -> Result<LoadedTemplate, TemplateErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TemplateErrors::single(&origin, format!("cannot read file: {e}")))?;
    parse_str(&text, &origin, handlers)
}
