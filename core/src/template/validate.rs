//! Template problems (what is wrong, located by file, step and field) and the
//! semantic checks run on a structurally sound template: names, version, retry
//! and timeout bounds, handlers, input schema, event names, the dependency graph
//! and (in `validate_dynamic`) the wiring of decision and batch steps. Every check
//! runs; every problem is collected.

use super::graph;
use super::model::{StepTemplate, TaskTemplate};
use super::HandlerLookup;
use serde_json::Value;
use std::collections::HashMap;

/// One problem found in a template, located by file, step and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// File (or origin) of the template.
    pub file: String,
    /// Step the problem is in, if any.
    pub step: Option<String>,
    /// Field path, e.g. `retry.max_attempts`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(s) = &self.step {
            write!(f, ": step `{s}`")?;
        }
        if let Some(k) = &self.field {
            write!(f, ": field `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct TemplateErrors(pub Vec<TemplateProblem>);

impl TemplateErrors {
    /// One problem with no step or field.
    pub fn single(file: &str, message: impl Into<String>) -> Self {
        Self(vec![TemplateProblem {
            file: file.to_string(),
            step: None,
            field: None,
            message: message.into(),
        }])
    }
}

/// Collects problems for one file.
#[derive(Debug)]
pub(crate) struct Problems {
    file: String,
    pub(crate) list: Vec<TemplateProblem>,
}

impl Problems {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, step: Option<&str>, field: Option<String>, message: impl Into<String>) {
        self.list.push(TemplateProblem {
            file: self.file.clone(),
            step: step.map(str::to_string),
            field,
            message: message.into(),
        });
    }
}

/// Longest namespace or template name.
pub const MAX_TEMPLATE_NAME_LEN: usize = 64;
/// Longest step name.
pub const MAX_STEP_NAME_LEN: usize = 128;

/// Why `s` is not a valid identifier (`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`, at most
/// `max` characters), or `None` when it is.
pub fn identifier_problem(s: &str, max: usize) -> Option<String> {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Some("must not be empty".into());
    };
    let ok_first = first.is_ascii_alphanumeric() || first == '_';
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest {
        return Some(format!("`{s}` must match ^[A-Za-z0-9_][A-Za-z0-9_.-]*$"));
    }
    if s.chars().count() > max {
        return Some(format!("`{s}` is longer than {max} characters"));
    }
    None
}

/// True for dotted event names: `^[a-z0-9_]+(\.[a-z0-9_]+)+$`.
fn is_dotted_event_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Compiles a JSON Schema, reporting why it does not compile.
pub(crate) fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() {
        return Err("must be a mapping (a JSON Schema object)".into());
    }
    jsonschema::validator_for(schema).map_err(|e| format!("invalid JSON Schema: {e}"))
}

/// Runs every semantic check on `t` and returns every problem found (empty when
/// the template is valid). `handlers`, when given, is asked about each callable.
pub fn validate_template(t: &TaskTemplate, file: &str, handlers: Option<&dyn HandlerLookup>) -> Vec<TemplateProblem> {
    let mut out = Problems::new(file);
    check_template(t, handlers, &mut out);
    out.list
}

/// Runs every semantic check on `t`, adding problems to `out`.
pub(crate) fn check_template(t: &TaskTemplate, handlers: Option<&dyn HandlerLookup>, out: &mut Problems) {
    for (field, value) in [("namespace", &t.namespace), ("name", &t.name)] {
        if let Some(p) = identifier_problem(value, MAX_TEMPLATE_NAME_LEN) {
            out.push(None, Some(field.into()), p);
        }
    }
    if let Err(e) = semver::Version::parse(&t.version) {
        out.push(
            None,
            Some("version".into()),
            format!("`{}` is not a semantic version: {e}", t.version),
        );
    }
    if let Some(schema) = &t.input_schema {
        if let Err(e) = compile_schema(schema) {
            out.push(None, Some("input_schema".into()), e);
        }
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for s in &t.steps {
        let n = seen.entry(s.name.as_str()).or_insert(0);
        *n += 1;
        if *n == 2 {
            out.push(
                Some(&s.name),
                Some("name".into()),
                format!("duplicate step name `{}`", s.name),
            );
        }
    }
    for s in &t.steps {
        check_step(t, s, handlers, out);
    }
    super::validate_dynamic::check(t, out);
    for cycle in graph::find_cycles(t) {
        let text = cycle.join(" -> ");
        out.push(Some(&cycle[0]), Some("dependencies".into()), format!("cycle: {text}"));
    }
}

fn check_step(t: &TaskTemplate, s: &StepTemplate, handlers: Option<&dyn HandlerLookup>, out: &mut Problems) {
    let step = Some(s.name.as_str());
    if let Some(p) = identifier_problem(&s.name, MAX_STEP_NAME_LEN) {
        out.push(step, Some("name".into()), p);
    }
    if let Some(ns) = &s.namespace {
        if let Some(p) = identifier_problem(ns, MAX_TEMPLATE_NAME_LEN) {
            out.push(step, Some("namespace".into()), p);
        }
    }

    let mut deps_seen = Vec::new();
    for d in &s.dependencies {
        if deps_seen.contains(&d) {
            out.push(
                step,
                Some("dependencies".into()),
                format!("dependency `{d}` is listed twice"),
            );
            continue;
        }
        deps_seen.push(d);
        if *d == s.name {
            out.push(step, Some("dependencies".into()), "a step cannot depend on itself");
        } else if t.step(d).is_none() {
            out.push(
                step,
                Some("dependencies".into()),
                format!("depends on unknown step `{d}`"),
            );
        }
    }

    let r = &s.retry;
    if !(1..=100).contains(&r.max_attempts) {
        out.push(
            step,
            Some("retry.max_attempts".into()),
            format!("must be between 1 and 100, got {}", r.max_attempts),
        );
    }
    if r.base_ms > r.max_ms {
        out.push(
            step,
            Some("retry.base_ms".into()),
            format!("base_ms ({}) must not exceed max_ms ({})", r.base_ms, r.max_ms),
        );
    }
    if r.max_ms > 86_400_000 {
        out.push(
            step,
            Some("retry.max_ms".into()),
            format!("must be at most 86400000 (one day), got {}", r.max_ms),
        );
    }
    if !r.multiplier.is_finite() || r.multiplier < 1.0 {
        out.push(
            step,
            Some("retry.multiplier".into()),
            format!("must be a finite number >= 1.0, got {}", r.multiplier),
        );
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        out.push(
            step,
            Some("retry.jitter".into()),
            format!("must be between 0.0 and 1.0, got {}", r.jitter),
        );
    }
    if !(1..=86_400).contains(&s.timeout_seconds) {
        out.push(
            step,
            Some("timeout_seconds".into()),
            format!("must be between 1 and 86400, got {}", s.timeout_seconds),
        );
    }

    let h = &s.handler;
    if h.callable.trim().is_empty() {
        out.push(step, Some("handler.callable".into()), "must not be empty");
    } else if handlers.is_some_and(|l| !l.has_handler(&h.callable)) {
        out.push(
            step,
            Some("handler.callable".into()),
            format!("no handler is registered as `{}`", h.callable),
        );
    }
    if !h.initialization.is_object() {
        out.push(
            step,
            Some("handler.initialization".into()),
            "must be a mapping (JSON object)",
        );
    }

    for (i, e) in s.publishes_events.iter().enumerate() {
        if !is_dotted_event_name(&e.name) {
            out.push(
                step,
                Some(format!("publishes_events[{i}].name")),
                format!("event name `{}` must be dotted lowercase, e.g. `order.shipped`", e.name),
            );
        }
        if let Some(Err(e)) = e.schema.as_ref().map(compile_schema) {
            out.push(step, Some(format!("publishes_events[{i}].schema")), e);
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
