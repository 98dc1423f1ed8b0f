//! A step result: what a host language's handler sends back for a step event,
//! and what the bridge answers for a batch of them.
//!
//! A result that cannot be decoded, or that breaks a rule below, is not dropped:
//! when its `event_id` names a held event, the step fails (not retryable) with
//! error type `invalid_result` and a message naming the problem.
//! Rules beyond the schema: a failure carries `error`, a success does not;
//! `retry_after_ms` only on retryable failures.

use super::outcome::{batch_outcome, decision_outcome};
use crate::worker::{StepError, StepResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Error type recorded for a result that breaks the contract.
pub const INVALID_RESULT: &str = "invalid_result";

/// Why an attempt failed, as a handler reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultError {
    /// What went wrong, for people.
    pub message: String,
    /// A short classifier: an exception class name, `timeout`, `http_503`, ...
    pub error_type: String,
    /// Whether another attempt may succeed (the failure table in proto-contract/README.md).
    pub retryable: bool,
    /// Wait at least this long before the next attempt (a server's Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// An application error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Where it happened (a formatted traceback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

/// One handler's answer for one step event.
///
/// The outcome of a decision step goes in `result.decision_point_outcome`
/// (`{"type": "create_steps", "step_names": [...]}` or `{"type": "no_branches"}`),
/// that of a batchable step in `result.batch_processing_outcome`
/// (`{"type": "create_batches", "total_items": N, "batch_size": S}`,
/// `{"type": "create_batches", "cursor_configs": [...]}` or `{"type": "no_batches"}`);
/// their schemas are `decision_point_outcome` and `batch_processing_outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepCompletion {
    /// The event this answers.
    pub event_id: Uuid,
    /// True when the attempt succeeded.
    pub success: bool,
    /// The result; children see it as a dependency result. Null when absent.
    #[serde(default)]
    pub result: Value,
    /// Why it failed (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
    /// Free-form metadata recorded with the result.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Wall time the handler took, as the host measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time_ms: Option<u64>,
}

impl StepCompletion {
    /// Checks the rules the schema cannot express; the message names the problem.
    pub fn check(&self) -> Result<(), String> {
        match (&self.error, self.success) {
            (None, false) => return Err("a failure (success: false) must carry `error`".into()),
            (Some(_), true) => return Err("a success (success: true) must not carry `error`".into()),
            (Some(e), false) if e.retry_after_ms.is_some() && !e.retryable => {
                return Err("`retry_after_ms` is only allowed on a retryable failure".into())
            }
            _ => {}
        }
        if let Some(outcome) = decision_outcome(&self.result) {
            outcome?;
        }
        if let Some(outcome) = batch_outcome(&self.result) {
            outcome?;
        }
        Ok(())
    }

    /// The engine's view of this result.
    pub fn into_step_result(self) -> StepResult {
        StepResult {
            success: self.success,
            result: self.result,
            error: self.error.map(|e| StepError {
                message: e.message,
                error_type: e.error_type,
                retryable: e.retryable,
                retry_after_ms: e.retry_after_ms,
                code: e.code,
                backtrace: e.backtrace,
            }),
            metadata: self.metadata,
            published: Vec::new(),
        }
    }
}

/// The failure recorded for a result that breaks the contract.
pub fn invalid_result(message: impl Into<String>) -> StepResult {
    StepResult::permanent_failure(message, INVALID_RESULT)
}

/// What the bridge did with a batch of results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionReport {
    /// Results handed to the engine (including invalid ones, recorded as failures).
    pub accepted: u32,
    /// Results that broke the contract and were recorded as `invalid_result` failures.
    pub invalid: Vec<InvalidResult>,
    /// Results that could not be recorded: unknown or already finished events.
    pub rejected: Vec<RejectedResult>,
}

/// A result recorded as an `invalid_result` failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidResult {
    /// The event.
    pub event_id: Uuid,
    /// What was wrong.
    pub message: String,
}

/// A result that could not be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedResult {
    /// The event it named, when it named one.
    pub event_id: Option<String>,
    /// Why it was not recorded.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(v: Value) -> Result<StepCompletion, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = decode(json!({"event_id": Uuid::nil(), "success": true, "resutl": 1})).unwrap_err();
        assert!(e.to_string().contains("resutl"), "{e}");
    }

    #[test]
    fn failure_and_error_go_together() {
        let ok = decode(json!({"event_id": Uuid::nil(), "success": true, "result": 1})).unwrap();
        assert!(ok.check().is_ok());
        let bad = decode(json!({"event_id": Uuid::nil(), "success": false})).unwrap();
        assert!(bad.check().unwrap_err().contains("must carry `error`"));
        let bad = decode(json!({"event_id": Uuid::nil(), "success": true,
            "error": {"message": "m", "error_type": "t", "retryable": true}}))
        .unwrap();
        assert!(bad.check().is_err());
        let bad = decode(json!({"event_id": Uuid::nil(), "success": false,
            "error": {"message": "m", "error_type": "t", "retryable": false, "retry_after_ms": 5}}))
        .unwrap();
        assert!(bad.check().unwrap_err().contains("retry_after_ms"));
    }

    #[test]
    fn outcomes_need_a_known_type() {
        let bad = decode(json!({"event_id": Uuid::nil(), "success": true,
            "result": {"decision_point_outcome": {"type": "activate"}}}))
        .unwrap();
        assert!(bad.check().unwrap_err().contains("activate"));
        let ok = decode(json!({"event_id": Uuid::nil(), "success": true,
            "result": {"batch_processing_outcome": {"type": "no_batches"}}}))
        .unwrap();
        assert!(ok.check().is_ok());
    }
}
