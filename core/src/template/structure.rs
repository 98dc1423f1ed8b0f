//! The structural pass over a template's raw JSON form, before any typed
//! deserialization: every unknown key and every wrongly typed field is reported
//! (with step and field path), and the typed model is then built step by step so
//! that one bad step never hides another's problems.

use super::model::{BackoffKind, DeliveryMode, EventCondition, IdentityStrategy, StepTemplate, StepType, TaskTemplate};
use super::validate::Problems;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// How one key of a mapping is checked.
enum Kind {
    /// A leaf: type-checked by deserializing the value into the model's type.
    Leaf(fn(&Value) -> Result<(), String>),
    /// A nested mapping with its own allowed keys.
    Object(&'static Shape),
    /// A sequence of nested mappings.
    ListOf(&'static Shape),
}

/// The allowed keys of one kind of mapping.
struct Shape {
    /// Which mapping this is, for messages.
    what: &'static str,
    /// Keys that must be present.
    required: &'static [&'static str],
    /// Every allowed key and how it is checked.
    keys: &'static [(&'static str, Kind)],
}

fn leaf<T: DeserializeOwned>(v: &Value) -> Result<(), String> {
    T::deserialize(v).map(|_| ()).map_err(|e| e.to_string())
}

static LIFECYCLE: Shape = Shape {
    what: "lifecycle",
    required: &[],
    keys: &[
        ("max_duration_minutes", Kind::Leaf(leaf::<Option<u64>>)),
        ("max_waiting_for_dependencies_minutes", Kind::Leaf(leaf::<Option<u64>>)),
        ("max_waiting_for_retry_minutes", Kind::Leaf(leaf::<Option<u64>>)),
        ("max_steps_in_process_minutes", Kind::Leaf(leaf::<Option<u64>>)),
        ("hold_failed_tasks", Kind::Leaf(leaf::<bool>)),
    ],
};

static HANDLER: Shape = Shape {
    what: "handler",
    required: &["callable"],
    keys: &[
        ("callable", Kind::Leaf(leaf::<String>)),
        ("method", Kind::Leaf(leaf::<String>)),
        ("initialization", Kind::Leaf(leaf::<Value>)),
    ],
};

static RETRY: Shape = Shape {
    what: "retry",
    required: &[],
    keys: &[
        ("retryable", Kind::Leaf(leaf::<bool>)),
        ("max_attempts", Kind::Leaf(leaf::<u32>)),
        ("backoff", Kind::Leaf(leaf::<BackoffKind>)),
        ("base_ms", Kind::Leaf(leaf::<u64>)),
        ("max_ms", Kind::Leaf(leaf::<u64>)),
        ("multiplier", Kind::Leaf(leaf::<f64>)),
        ("jitter", Kind::Leaf(leaf::<f64>)),
    ],
};

static EVENT: Shape = Shape {
    what: "event declaration",
    required: &["name"],
    keys: &[
        ("name", Kind::Leaf(leaf::<String>)),
        ("description", Kind::Leaf(leaf::<Option<String>>)),
        ("condition", Kind::Leaf(leaf::<EventCondition>)),
        ("delivery_mode", Kind::Leaf(leaf::<DeliveryMode>)),
        ("schema", Kind::Leaf(leaf::<Option<Value>>)),
    ],
};

static BATCH: Shape = Shape {
    what: "batch_config",
    required: &[],
    keys: &[
        ("batch_size", Kind::Leaf(leaf::<u64>)),
        ("parallelism", Kind::Leaf(leaf::<u32>)),
        ("cursor_field", Kind::Leaf(leaf::<String>)),
        ("worker_template", Kind::Leaf(leaf::<Option<String>>)),
    ],
};

static STEP: Shape = Shape {
    what: "step",
    required: &["name", "handler"],
    keys: &[
        ("name", Kind::Leaf(leaf::<String>)),
        ("description", Kind::Leaf(leaf::<Option<String>>)),
        ("namespace", Kind::Leaf(leaf::<Option<String>>)),
        ("type", Kind::Leaf(leaf::<StepType>)),
        ("dependencies", Kind::Leaf(leaf::<Vec<String>>)),
        ("handler", Kind::Object(&HANDLER)),
        ("retry", Kind::Object(&RETRY)),
        ("timeout_seconds", Kind::Leaf(leaf::<u64>)),
        ("publishes_events", Kind::ListOf(&EVENT)),
        ("batch_config", Kind::Object(&BATCH)),
    ],
};

/// The template's top level, without `steps` (those are walked one by one).
static TOP: Shape = Shape {
    what: "template",
    required: &["namespace", "name", "version"],
    keys: &[
        ("namespace", Kind::Leaf(leaf::<String>)),
        ("name", Kind::Leaf(leaf::<String>)),
        ("version", Kind::Leaf(leaf::<String>)),
        ("description", Kind::Leaf(leaf::<Option<String>>)),
        ("input_schema", Kind::Leaf(leaf::<Option<Value>>)),
        ("identity_strategy", Kind::Leaf(leaf::<IdentityStrategy>)),
        ("lifecycle", Kind::Object(&LIFECYCLE)),
        ("steps", Kind::Leaf(leaf::<Vec<Value>>)),
    ],
};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Walks one mapping against its shape: reports unknown keys, missing required
/// keys and wrongly typed values, and removes unknown keys in place so the typed
/// deserialization afterwards sees only known ones. Returns false when a value
/// has the wrong type (the typed model cannot be built).
fn walk(obj: &mut Map<String, Value>, shape: &Shape, prefix: &str, step: Option<&str>, out: &mut Problems) -> bool {
    let mut ok = true;
    let mut keys: Vec<String> = obj.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let Some((_, kind)) = shape.keys.iter().find(|(k, _)| *k == key) else {
            let allowed: Vec<&str> = shape.keys.iter().map(|(k, _)| *k).collect();
            out.push(
                step,
                Some(join(prefix, &key)),
                format!(
                    "unknown key `{key}` in {} (allowed: {})",
                    shape.what,
                    allowed.join(", ")
                ),
            );
            obj.remove(&key);
            continue;
        };
        let path = join(prefix, &key);
        let value = obj.get_mut(&key).expect("key listed above");
        match kind {
            Kind::Leaf(check) => {
                if let Err(e) = check(value) {
                    out.push(step, Some(path), e);
                    ok = false;
                }
            }
            Kind::Object(inner) => match value {
                Value::Object(m) => ok &= walk(m, inner, &path, step, out),
                other => {
                    out.push(
                        step,
                        Some(path),
                        format!("expected a mapping, found {}", type_name(other)),
                    );
                    ok = false;
                }
            },
            Kind::ListOf(inner) => match value {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        match item {
                            Value::Object(m) => ok &= walk(m, inner, &item_path, step, out),
                            other => {
                                out.push(
                                    step,
                                    Some(item_path),
                                    format!("expected a mapping, found {}", type_name(other)),
                                );
                                ok = false;
                            }
                        }
                    }
                }
                other => {
                    out.push(
                        step,
                        Some(path),
                        format!("expected a sequence, found {}", type_name(other)),
                    );
                    ok = false;
                }
            },
        }
    }
    for req in shape.required {
        if !obj.contains_key(*req) {
            out.push(
                step,
                Some(join(prefix, req)),
                format!("missing required key `{req}` in {}", shape.what),
            );
            ok = false;
        }
    }
    ok
}

/// The label problems in step `index` are filed under: its name when it has a
/// string one, `#index` otherwise.
fn step_label(raw: &Value, index: usize) -> String {
    match raw.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => format!("#{index}"),
    }
}

/// Builds the typed template from its raw JSON form, reporting every structural
/// problem into `out`. Returns the template when it could be built (unknown keys
/// are reported but do not stop the build, so semantic checks still run).
pub(crate) fn build(mut raw: Value, out: &mut Problems) -> Option<TaskTemplate> {
    let Value::Object(top) = &mut raw else {
        out.push(
            None,
            None,
            format!(
                "a template must be a mapping at the top level, found {}",
                type_name(&raw)
            ),
        );
        return None;
    };
    let raw_steps = top.remove("steps");
    let mut ok = walk(top, &TOP, "", None, out);
    let mut steps = Vec::new();
    match raw_steps {
        None => {
            out.push(None, Some("steps".into()), "missing required key `steps` in template");
            ok = false;
        }
        Some(Value::Array(items)) => {
            for (i, mut item) in items.into_iter().enumerate() {
                let label = step_label(&item, i);
                let Value::Object(m) = &mut item else {
                    out.push(
                        Some(label.as_str()),
                        None,
                        format!("a step must be a mapping, found {}", type_name(&item)),
                    );
                    ok = false;
                    continue;
                };
                if !walk(m, &STEP, "", Some(&label), out) {
                    ok = false;
                    continue;
                }
                match serde_json::from_value::<StepTemplate>(item) {
                    Ok(s) => steps.push(s),
                    Err(e) => {
                        out.push(Some(label.as_str()), None, e.to_string());
                        ok = false;
                    }
                }
            }
        }
        Some(other) => {
            out.push(
                None,
                Some("steps".into()),
                format!("expected a sequence, found {}", type_name(&other)),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    top.insert("steps".into(), Value::Array(Vec::new()));
    match serde_json::from_value::<TaskTemplate>(raw) {
        Ok(mut t) => {
            t.steps = steps;
            Some(t)
        }
        Err(e) => {
            out.push(None, None, e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{problems, the_problem, with_steps};

    #[test]
    fn unknown_keys_are_reported_at_every_level() {
        let yaml = "namespace: ns\nname: t\nversion: 1.0.0\nowner: me\n\
            lifecycle: { hold_failed: true }\n\
            steps:\n\
            \x20 - name: a\n\
            \x20   colour: red\n\
            \x20   handler: { callable: square, args: 1 }\n\
            \x20   retry: { attempts: 2 }\n\
            \x20   publishes_events: [ { name: a.b, mode: fast } ]\n\
            \x20   batch_config: { size: 3 }\n";
        let ps = problems(yaml);
        for (step, field) in [
            (None, "owner"),
            (None, "lifecycle.hold_failed"),
            (Some("a"), "colour"),
            (Some("a"), "handler.args"),
            (Some("a"), "retry.attempts"),
            (Some("a"), "publishes_events[0].mode"),
            (Some("a"), "batch_config.size"),
        ] {
            let p = the_problem(&ps, step, Some(field));
            let key = field.rsplit('.').next().unwrap();
            assert!(p.message.starts_with(&format!("unknown key `{key}`")), "{p}");
        }
        assert_eq!(ps.len(), 7, "{ps:#?}");
    }

    #[test]
    fn the_type_key_is_allowed_and_step_type_is_not() {
        let ps = problems(&with_steps(
            "  - name: a\n    handler: { callable: x }\n    step_type: decision\n",
        ));
        assert!(the_problem(&ps, Some("a"), Some("step_type"))
            .message
            .contains("allowed: name, description, namespace, type,"));
    }

    #[test]
    fn type_errors_in_one_step_do_not_hide_another_steps_problems() {
        let yaml = with_steps(
            "  - name: a\n    handler: { callable: x }\n    timeout_seconds: soon\n\
             \x20 - name: b\n    handler: { callable: x }\n    retry: { max_attempts: many }\n\
             \x20 - name: c\n    handler: { callable: x }\n    dependencies: b\n",
        );
        let ps = problems(&yaml);
        assert!(the_problem(&ps, Some("a"), Some("timeout_seconds"))
            .message
            .contains("invalid type"));
        the_problem(&ps, Some("b"), Some("retry.max_attempts"));
        the_problem(&ps, Some("c"), Some("dependencies"));
        assert_eq!(ps.len(), 3, "{ps:#?}");
    }

    #[test]
    fn several_type_errors_in_one_step_are_all_reported() {
        let yaml = with_steps(
            "  - name: a\n    type: sideways\n    handler: { callable: [x] }\n    retry: { jitter: lots, backoff: random }\n",
        );
        let ps = problems(&yaml);
        for field in ["type", "handler.callable", "retry.jitter", "retry.backoff"] {
            the_problem(&ps, Some("a"), Some(field));
        }
        assert_eq!(ps.len(), 4, "{ps:#?}");
    }

    #[test]
    fn missing_required_keys_are_reported() {
        let ps = problems("namespace: ns\nsteps:\n  - handler: {}\n");
        the_problem(&ps, None, Some("name"));
        the_problem(&ps, None, Some("version"));
        the_problem(&ps, Some("#0"), Some("name"));
        let p = the_problem(&ps, Some("#0"), Some("handler.callable"));
        assert_eq!(p.message, "missing required key `callable` in handler");
        assert_eq!(ps.len(), 4, "{ps:#?}");
    }

    #[test]
    fn a_non_mapping_document_or_step_is_reported() {
        let ps = problems("- just\n- a list\n");
        assert!(ps[0].message.contains("mapping at the top level, found a sequence"));
        let ps = problems(&with_steps("  - 42\n"));
        assert_eq!(
            the_problem(&ps, Some("#0"), None).message,
            "a step must be a mapping, found a number"
        );
        let ps = problems("namespace: ns\nname: t\nversion: 1.0.0\nsteps: {}\n");
        the_problem(&ps, None, Some("steps"));
    }

    #[test]
    fn unknown_keys_and_semantic_problems_are_reported_together() {
        let yaml = "namespace: ns\nname: t\nversion: one\nextra: 1\nsteps:\n\
            \x20 - name: a\n    handler: { callable: x }\n    dependencies: [ghost]\n    retry: { jitter: 2.0, tries: 1 }\n\
            \x20 - name: b\n    type: decision\n    handler: { callable: x }\n";
        let ps = problems(yaml);
        the_problem(&ps, None, Some("extra"));
        the_problem(&ps, None, Some("version"));
        the_problem(&ps, Some("a"), Some("dependencies"));
        the_problem(&ps, Some("a"), Some("retry.jitter"));
        the_problem(&ps, Some("a"), Some("retry.tries"));
        the_problem(&ps, Some("b"), Some("dependencies"));
        assert_eq!(ps.len(), 6, "{ps:#?}");
        let text = crate::template::TemplateErrors(ps).to_string();
        assert_eq!(text.lines().count(), 6);
        assert!(
            text.contains("t.yaml: step `a`: field `retry.jitter`: must be between 0.0 and 1.0"),
            "{text}"
        );
    }
}
