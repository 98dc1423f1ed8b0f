//! Loading a template from YAML text or a file: YAML parsing (with line and
//! column on syntax errors), the structural pass, semantic validation, the
//! content hash and the compiled validators (the input schema, and the payload
//! schema of each declared domain event).

use super::structure;
use super::validate::{check_template, compile_schema, Problems};
use super::{HandlerLookup, TaskTemplate, TemplateErrors};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A compiled JSON Schema, shared.
pub type SharedValidator = Arc<jsonschema::Validator>;

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
    /// The compiled payload schema of each declared event, by (step, event name).
    event_schemas: HashMap<(String, String), SharedValidator>,
}

impl std::fmt::Debug for LoadedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedTemplate")
            .field("template", &self.template)
            .field("content_hash", &self.content_hash)
            .field("origin", &self.origin)
            .field("has_schema", &self.schema.is_some())
            .field("event_schemas", &self.event_schemas.len())
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

    /// The compiled payload schema of event `event` declared by step `step`, when
    /// it declares one.
    pub fn event_schema(&self, step: &str, event: &str) -> Option<SharedValidator> {
        self.event_schemas.get(&(step.to_string(), event.to_string())).cloned()
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
        let schema = template.input_schema.as_ref().and_then(|s| compile_schema(s).ok());
        let event_schemas = template
            .steps
            .iter()
            .flat_map(|step| {
                step.publishes_events.iter().filter_map(|e| {
                    let compiled = compile_schema(e.schema.as_ref()?).ok()?;
                    Some(((step.name.clone(), e.name.clone()), Arc::new(compiled)))
                })
            })
            .collect();
        Self {
            template,
            content_hash,
            origin: origin.to_string(),
            schema,
            event_schemas,
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
pub fn load_file(path: &Path, handlers: Option<&dyn HandlerLookup>) -> Result<LoadedTemplate, TemplateErrors> {
    let origin = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| TemplateErrors::single(&origin, format!("cannot read file: {e}")))?;
    parse_str(&text, &origin, handlers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA_T: &str = "namespace: ns\nname: t\nversion: 1.0.0\n\
        input_schema:\n  type: object\n  required: [n]\n  properties:\n    n: { type: integer, minimum: 0 }\n\
        steps:\n  - name: a\n    handler: { callable: square }\n";

    #[test]
    fn a_loaded_template_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LoadedTemplate>();
        let t = std::sync::Arc::new(parse_str(SCHEMA_T, "t", None).unwrap());
        let t2 = t.clone();
        let ok = std::thread::spawn(move || t2.validate_context(&json!({"n": 1})).is_ok())
            .join()
            .unwrap();
        assert!(ok);
    }

    #[test]
    fn malformed_yaml_is_reported_with_file_line_and_column() {
        let err = parse_str("namespace: ns\nname: [unclosed\nversion: 1.0.0\n", "bad.yaml", None).unwrap_err();
        assert_eq!(err.0.len(), 1);
        let p = &err.0[0];
        assert_eq!(p.file, "bad.yaml");
        assert!(p.message.starts_with("malformed YAML at line "), "{p}");
        assert!(p.message.contains("column"), "{p}");
        assert!(err.to_string().starts_with("bad.yaml: malformed YAML"));
    }

    #[test]
    fn a_tab_indented_line_is_located() {
        let err = parse_str("namespace: ns\nsteps:\n\t- name: a\n", "tab.yaml", None).unwrap_err();
        assert!(err.0[0].message.contains("line 3"), "{}", err);
    }

    #[test]
    fn the_content_hash_ignores_key_order_and_formatting() {
        let a = parse_str(SCHEMA_T, "a", None).unwrap();
        let reordered = "steps:\n  - handler: { callable: square }\n    name: a\n\
            version: 1.0.0\n\
            input_schema: { properties: { n: { minimum: 0, type: integer } }, required: [n], type: object }\n\
            name: t\nnamespace: ns\n";
        let b = parse_str(reordered, "b", None).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        assert_eq!(a.content_hash.len(), 64);
    }

    #[test]
    fn the_content_hash_changes_when_the_content_changes() {
        let a = parse_str(SCHEMA_T, "a", None).unwrap();
        let changed = SCHEMA_T.replace("minimum: 0", "minimum: 1");
        let b = parse_str(&changed, "b", None).unwrap();
        assert_ne!(a.content_hash, b.content_hash);
        let defaults_spelled_out = SCHEMA_T.replace(
            "callable: square }",
            "callable: square, method: call }\n    timeout_seconds: 30",
        );
        let c = parse_str(&defaults_spelled_out, "c", None).unwrap();
        assert_eq!(
            a.content_hash, c.content_hash,
            "defaults hash like their explicit values"
        );
    }

    #[test]
    fn a_context_that_satisfies_the_schema_is_accepted() {
        let t = parse_str(SCHEMA_T, "t", None).unwrap();
        assert_eq!(t.validate_context(&json!({"n": 3})), Ok(()));
    }

    #[test]
    fn a_context_that_breaks_the_schema_lists_each_problem_with_its_path() {
        let t = parse_str(SCHEMA_T, "t", None).unwrap();
        let errs = t.validate_context(&json!({"n": "x"})).unwrap_err();
        assert_eq!(errs, vec![r#"/n: "x" is not of type "integer""#.to_string()]);
        let errs = t.validate_context(&json!({})).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("\"n\" is a required property"), "{errs:?}");
        assert!(t.validate_context(&json!({"n": -1})).is_err());
    }

    #[test]
    fn without_a_schema_any_context_is_accepted() {
        let t = parse_str("namespace: ns\nname: t\nversion: 1.0.0\nsteps: []\n", "t", None).unwrap();
        assert_eq!(t.validate_context(&json!("anything")), Ok(()));
    }

    #[test]
    fn from_template_validates_and_round_trips_through_definition_json() {
        let loaded = parse_str(SCHEMA_T, "t", None).unwrap();
        let json = loaded.definition_json();
        let back: TaskTemplate = serde_json::from_value(json).unwrap();
        let again = LoadedTemplate::from_template(back, "again").unwrap();
        assert_eq!(again.content_hash, loaded.content_hash);
        assert!(again.validate_context(&json!({"n": "x"})).is_err());

        let mut bad = loaded.template.clone();
        bad.steps[0].dependencies.push("ghost".into());
        let err = LoadedTemplate::from_template(bad, "mem").unwrap_err();
        assert_eq!(err.0[0].file, "mem");
        assert_eq!(err.0[0].step.as_deref(), Some("a"));
    }

    #[test]
    fn load_file_names_the_file_in_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, "namespace: ns\nname: t\nversion: 1.0.0\nsteps: []\nbogus: 1\n").unwrap();
        let err = load_file(&path, None).unwrap_err();
        assert_eq!(err.0[0].file, path.display().to_string());
        assert_eq!(err.0[0].field.as_deref(), Some("bogus"));
        let missing = load_file(&dir.path().join("nope.yaml"), None).unwrap_err();
        assert!(missing.0[0].message.starts_with("cannot read file"));
    }
}
