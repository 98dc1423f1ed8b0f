//! The JSON Schemas of the contract, generated from the Rust types. The files in
//! `proto-contract/schemas/` are these, pretty-printed; `cargo test` fails when
//! they drift (regenerate with `TASKER_BLESS=1 cargo test --test contract`).

use super::{
    BatchOutcome, CompletionReport, DecisionOutcome, PublishDomainEvent, StepCompletion, StepEvent, TaskRequest,
};
use crate::events::domain::{DomainEvent, StoredDomainEvent};
use crate::store::TaskView;
use schemars::{schema_for, Schema};

/// Every message, by schema file stem (`proto-contract/schemas/<name>.schema.json`).
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("step_event", schema_for!(StepEvent)),
        ("step_result", schema_for!(StepCompletion)),
        ("completion_report", schema_for!(CompletionReport)),
        ("task_request", schema_for!(TaskRequest)),
        ("task_view", schema_for!(TaskView)),
        ("publish_domain_event", schema_for!(PublishDomainEvent)),
        ("domain_event", schema_for!(DomainEvent)),
        ("stored_domain_event", schema_for!(StoredDomainEvent)),
        ("decision_point_outcome", schema_for!(DecisionOutcome)),
        ("batch_processing_outcome", schema_for!(BatchOutcome)),
    ]
}

/// A schema as committed: pretty JSON with a trailing newline.
pub fn render(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("a schema serialises");
    s.push('\n');
    s
}
