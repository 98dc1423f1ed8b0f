//! Decoding SQLite rows into the store's domain types.

use super::parse_uuid;
use crate::state::{StepState, TaskState};
use crate::store::{StepView, StoreError, TransitionRecord};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use std::str::FromStr;

pub(super) fn json_opt(table: &'static str, s: Option<String>) -> Result<Option<Value>, StoreError> {
    s.map(|s| {
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            table,
            reason: format!("bad JSON: {e}"),
        })
    })
    .transpose()
}

pub(super) fn step_state(s: &str) -> Result<StepState, StoreError> {
    StepState::from_str(s).map_err(|e| StoreError::Corrupt {
        table: "steps",
        reason: e.to_string(),
    })
}

pub(super) fn task_state(s: &str) -> Result<TaskState, StoreError> {
    TaskState::from_str(s).map_err(|e| StoreError::Corrupt {
        table: "tasks",
        reason: e.to_string(),
    })
}

pub(super) fn step_view(r: &SqliteRow) -> Result<StepView, StoreError> {
    Ok(StepView {
        step_uuid: parse_uuid("steps", &r.try_get::<String, _>("step_uuid")?)?,
        name: r.try_get("name")?,
        state: step_state(&r.try_get::<String, _>("state")?)?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        handler: r.try_get("handler_callable")?,
        result: json_opt("steps", r.try_get("result")?)?,
        error: json_opt("steps", r.try_get("error")?)?,
        completed_at: r.try_get("completed_at")?,
        ready_at: r.try_get("ready_at")?,
    })
}

pub(super) fn transition(r: &SqliteRow) -> Result<TransitionRecord, StoreError> {
    Ok(TransitionRecord {
        transition_id: r.try_get("transition_id")?,
        from_state: r.try_get("from_state")?,
        to_state: r.try_get("to_state")?,
        event: r.try_get("event")?,
        metadata: json_opt("transitions", r.try_get("metadata")?)?,
        processor: r.try_get("processor")?,
        created_at: r.try_get("created_at")?,
        most_recent: r.try_get::<i64, _>("most_recent")? == 1,
    })
}
