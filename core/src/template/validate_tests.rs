//! Tests for the semantic checks in `validate`: one test per problem class.

use super::*;
use crate::template::test_support::{problems, the_problem, with_steps};
use crate::template::{HandlerLookup, LoadedTemplate};

const H: &str = "    handler: { callable: square }\n";

fn step(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n{H}{extra}")
}

fn header_problem(header: &str, field: &str) -> TemplateProblem {
    let yaml = format!("{header}\nsteps: []\n");
    let ps = problems(&yaml);
    the_problem(&ps, None, Some(field)).clone()
}

#[test]
fn a_valid_template_has_no_problems() {
    let yaml = with_steps(&format!("{}{}", step("a", ""), step("b", "    dependencies: [a]\n")));
    assert_eq!(problems(&yaml), vec![]);
}

#[test]
fn a_template_without_steps_is_allowed() {
    assert_eq!(problems("namespace: ns\nname: t\nversion: 1.0.0\nsteps: []\n"), vec![]);
}

#[test]
fn a_namespace_with_a_space_is_rejected() {
    let p = header_problem("namespace: my ns\nname: t\nversion: 1.0.0", "namespace");
    assert!(p.message.contains("must match"), "{p}");
}

#[test]
fn an_empty_template_name_is_rejected() {
    let p = header_problem("namespace: ns\nname: ''\nversion: 1.0.0", "name");
    assert_eq!(p.message, "must not be empty");
}

#[test]
fn a_template_name_longer_than_64_characters_is_rejected() {
    let long = "n".repeat(65);
    let p = header_problem(&format!("namespace: ns\nname: {long}\nversion: 1.0.0"), "name");
    assert!(p.message.contains("longer than 64"), "{p}");
    let ok = "n".repeat(64);
    assert_eq!(
        problems(&format!("namespace: ns\nname: {ok}\nversion: 1.0.0\nsteps: []\n")),
        vec![]
    );
}

#[test]
fn a_version_that_is_not_semver_is_rejected() {
    let p = header_problem("namespace: ns\nname: t\nversion: '1.2'", "version");
    assert!(p.message.contains("not a semantic version"), "{p}");
}

#[test]
fn a_step_name_with_a_slash_is_rejected() {
    let ps = problems(&with_steps(&step("a/b", "")));
    let p = the_problem(&ps, Some("a/b"), Some("name"));
    assert!(p.message.contains("must match"), "{p}");
}

#[test]
fn a_step_namespace_follows_the_template_namespace_rules() {
    let ps = problems(&with_steps(&step("a", "    namespace: 'billing team'\n")));
    let p = the_problem(&ps, Some("a"), Some("namespace"));
    assert!(p.message.contains("must match"), "{p}");
    let ps = problems(&with_steps(&step("a", &format!("    namespace: {}\n", "n".repeat(65)))));
    assert!(the_problem(&ps, Some("a"), Some("namespace"))
        .message
        .contains("longer than 64"));
    assert_eq!(
        problems(&with_steps(&step("a", "    namespace: billing.python\n"))),
        vec![]
    );
}

#[test]
fn a_step_name_longer_than_128_characters_is_rejected() {
    let long = "s".repeat(129);
    let ps = problems(&with_steps(&step(&long, "")));
    assert!(the_problem(&ps, Some(&long), Some("name"))
        .message
        .contains("longer than 128"));
}

#[test]
fn duplicate_step_names_are_reported_once() {
    let ps = problems(&with_steps(&format!(
        "{}{}{}",
        step("a", ""),
        step("a", ""),
        step("a", "")
    )));
    assert_eq!(
        the_problem(&ps, Some("a"), Some("name")).message,
        "duplicate step name `a`"
    );
}

#[test]
fn a_dependency_on_an_unknown_step_is_reported() {
    let ps = problems(&with_steps(&step("a", "    dependencies: [ghost]\n")));
    assert_eq!(
        the_problem(&ps, Some("a"), Some("dependencies")).message,
        "depends on unknown step `ghost`"
    );
}

#[test]
fn a_step_depending_on_itself_is_reported() {
    let ps = problems(&with_steps(&step("a", "    dependencies: [a]\n")));
    assert_eq!(
        the_problem(&ps, Some("a"), Some("dependencies")).message,
        "a step cannot depend on itself"
    );
}

#[test]
fn a_cycle_is_named_in_order() {
    let yaml = with_steps(&format!(
        "{}{}{}",
        step("a", "    dependencies: [c]\n"),
        step("b", "    dependencies: [a]\n"),
        step("c", "    dependencies: [b]\n"),
    ));
    let ps = problems(&yaml);
    assert_eq!(
        the_problem(&ps, Some("a"), Some("dependencies")).message,
        "cycle: a -> b -> c -> a"
    );
    assert_eq!(ps.len(), 1, "{ps:#?}");
}

#[test]
fn max_attempts_outside_1_to_100_is_rejected() {
    for n in [0, 101] {
        let ps = problems(&with_steps(&step(
            "a",
            &format!("    retry: {{ max_attempts: {n} }}\n"),
        )));
        let p = the_problem(&ps, Some("a"), Some("retry.max_attempts"));
        assert_eq!(p.message, format!("must be between 1 and 100, got {n}"));
    }
    assert_eq!(
        problems(&with_steps(&step("a", "    retry: { max_attempts: 100 }\n"))),
        vec![]
    );
}

#[test]
fn base_ms_above_max_ms_is_rejected() {
    let ps = problems(&with_steps(&step("a", "    retry: { base_ms: 5000, max_ms: 100 }\n")));
    let p = the_problem(&ps, Some("a"), Some("retry.base_ms"));
    assert!(p.message.contains("5000") && p.message.contains("100"), "{p}");
}

#[test]
fn max_ms_above_one_day_is_rejected() {
    let ps = problems(&with_steps(&step("a", "    retry: { max_ms: 86400001 }\n")));
    assert!(the_problem(&ps, Some("a"), Some("retry.max_ms"))
        .message
        .contains("86400000"));
}

#[test]
fn a_multiplier_below_one_is_rejected() {
    let ps = problems(&with_steps(&step("a", "    retry: { multiplier: 0.5 }\n")));
    assert!(the_problem(&ps, Some("a"), Some("retry.multiplier"))
        .message
        .contains("0.5"));
}

#[test]
fn an_infinite_multiplier_is_rejected() {
    let mut t: crate::template::TaskTemplate = serde_yaml_ng::from_str(&with_steps(&step("a", ""))).unwrap();
    t.steps[0].retry.multiplier = f64::INFINITY;
    let ps = validate_template(&t, "t.yaml", None);
    the_problem(&ps, Some("a"), Some("retry.multiplier"));
    assert!(LoadedTemplate::from_template(t, "t.yaml").is_err());
}

#[test]
fn jitter_outside_0_to_1_is_rejected() {
    let ps = problems(&with_steps(&step("a", "    retry: { jitter: 1.5 }\n")));
    assert_eq!(
        the_problem(&ps, Some("a"), Some("retry.jitter")).message,
        "must be between 0.0 and 1.0, got 1.5"
    );
}

#[test]
fn timeout_outside_1_to_86400_seconds_is_rejected() {
    for n in [0, 86_401] {
        let ps = problems(&with_steps(&step("a", &format!("    timeout_seconds: {n}\n"))));
        let p = the_problem(&ps, Some("a"), Some("timeout_seconds"));
        assert_eq!(p.message, format!("must be between 1 and 86400, got {n}"));
    }
}

#[test]
fn an_empty_handler_callable_is_rejected() {
    let ps = problems(&with_steps("  - name: a\n    handler: { callable: '' }\n"));
    assert_eq!(
        the_problem(&ps, Some("a"), Some("handler.callable")).message,
        "must not be empty"
    );
}

#[test]
fn handler_initialization_that_is_not_a_mapping_is_rejected() {
    let ps = problems(&with_steps(
        "  - name: a\n    handler: { callable: x, initialization: [1] }\n",
    ));
    the_problem(&ps, Some("a"), Some("handler.initialization"));
}

struct Only(&'static str);
impl HandlerLookup for Only {
    fn has_handler(&self, callable: &str) -> bool {
        callable == self.0
    }
}

#[test]
fn an_unknown_handler_is_reported_only_when_a_lookup_is_given() {
    let yaml = with_steps(&format!(
        "{}  - name: b\n    handler: {{ callable: nope }}\n",
        step("a", "")
    ));
    let ps = match crate::template::parse_str(&yaml, "t.yaml", Some(&Only("square"))) {
        Ok(_) => vec![],
        Err(e) => e.0,
    };
    assert_eq!(
        the_problem(&ps, Some("b"), Some("handler.callable")).message,
        "no handler is registered as `nope`"
    );
    assert_eq!(ps.len(), 1);
    assert_eq!(problems(&yaml), vec![]);
}

#[test]
fn an_input_schema_that_is_not_a_mapping_is_rejected() {
    let p = header_problem(
        "namespace: ns\nname: t\nversion: 1.0.0\ninput_schema: [1]",
        "input_schema",
    );
    assert!(p.message.contains("must be a mapping"), "{p}");
}

#[test]
fn an_input_schema_that_does_not_compile_is_rejected() {
    let p = header_problem(
        "namespace: ns\nname: t\nversion: 1.0.0\ninput_schema: { type: 5 }",
        "input_schema",
    );
    assert!(p.message.starts_with("invalid JSON Schema"), "{p}");
}

#[test]
fn event_names_must_be_dotted_lowercase() {
    let yaml = with_steps(&step(
        "a",
        "    publishes_events:\n      - name: order.shipped\n      - name: Shipped\n      - name: order.\n",
    ));
    let ps = problems(&yaml);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    the_problem(&ps, Some("a"), Some("publishes_events[1].name"));
    the_problem(&ps, Some("a"), Some("publishes_events[2].name"));
}

#[test]
fn an_event_payload_schema_that_does_not_compile_is_rejected() {
    let yaml = with_steps(&step(
        "a",
        "    publishes_events:\n      - { name: order.shipped, schema: { type: object } }\n\
         \x20     - { name: order.lost, schema: { type: 5 } }\n\
         \x20     - { name: order.odd, schema: [1] }\n",
    ));
    let ps = problems(&yaml);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    let bad = the_problem(&ps, Some("a"), Some("publishes_events[1].schema"));
    assert!(bad.message.starts_with("invalid JSON Schema"), "{bad}");
    let odd = the_problem(&ps, Some("a"), Some("publishes_events[2].schema"));
    assert!(odd.message.contains("must be a mapping"), "{odd}");
}

#[test]
fn problems_display_file_step_field_and_message() {
    let p = TemplateProblem {
        file: "f.yaml".into(),
        step: Some("s".into()),
        field: Some("retry.jitter".into()),
        message: "bad".into(),
    };
    assert_eq!(p.to_string(), "f.yaml: step `s`: field `retry.jitter`: bad");
    assert_eq!(TemplateErrors::single("f.yaml", "oops").to_string(), "f.yaml: oops");
}
