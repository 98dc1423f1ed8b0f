//! The outcomes of decision and batchable steps: what their handlers put in
//! `result.decision_point_outcome` and `result.batch_processing_outcome`.
//!
//! A decision names which of its declared branches the engine creates; a batchable
//! step says how its work splits into cursor ranges, one batch worker per range.
//! The engine acts on them in the transaction that records the result
//! (`orchestration::step_expansion`). These types decode them strictly: an unknown
//! key or a wrong type is refused with a message naming it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a decision step's outcome goes in its result.
pub const DECISION_KEY: &str = "decision_point_outcome";
/// Where a batchable step's outcome goes in its result.
pub const BATCH_KEY: &str = "batch_processing_outcome";

/// What a decision step chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DecisionOutcome {
    /// Create these branches: names of steps that depend on the decision step.
    CreateSteps {
        /// Step names, as the template declares them.
        step_names: Vec<String>,
    },
    /// Create no branch.
    NoBranches {},
}

/// How a batchable step splits its work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOutcome {
    /// One batch worker per cursor range. Either `cursor_configs` lists the ranges,
    /// or the engine cuts `total_items` into ranges of `batch_size` (the template's
    /// `batch_config.batch_size` when absent), with ids `"001"`, `"002"`, ...
    CreateBatches {
        /// How many items there are in all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_items: Option<u64>,
        /// Items per batch when the engine cuts the ranges.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch_size: Option<u64>,
        /// The ranges, when the handler cut them itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor_configs: Option<Vec<CursorConfig>>,
    },
    /// Nothing to process: no batch worker; the convergence step runs at once.
    NoBatches {},
}

/// One batch: a 0-based, end-exclusive range of items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorConfig {
    /// Becomes the end of the worker's step name (`<worker step>_<batch_id>`).
    pub batch_id: String,
    /// First item of the batch.
    pub start_cursor: u64,
    /// One past the last item of the batch.
    pub end_cursor: u64,
}

impl CursorConfig {
    /// Cuts `total_items` into ranges of `batch_size` items (at least 1), the last
    /// one shorter; ids `"001"`, `"002"`, ... (three digits at least).
    pub fn cut(total_items: u64, batch_size: u64) -> Vec<CursorConfig> {
        let size = batch_size.max(1);
        (0..total_items.div_ceil(size))
            .map(|i| CursorConfig {
                batch_id: format!("{:03}", i + 1),
                start_cursor: i * size,
                end_cursor: ((i + 1) * size).min(total_items),
            })
            .collect()
    }
}

/// The outcome a decision or batchable step returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicOutcome {
    /// A decision step's choice.
    Decision(DecisionOutcome),
    /// A batchable step's split.
    Batch(BatchOutcome),
}

/// Reads `result[key]` as `T`: None when the key is absent, an error naming the
/// problem when it does not decode.
fn read<T: serde::de::DeserializeOwned>(result: &Value, key: &str) -> Option<Result<T, String>> {
    let raw = result.get(key)?;
    Some(serde_json::from_value::<T>(raw.clone()).map_err(|e| format!("`result.{key}` is not valid: {e}")))
}

/// A decision outcome in `result`, if any.
pub fn decision_outcome(result: &Value) -> Option<Result<DecisionOutcome, String>> {
    read(result, DECISION_KEY)
}

/// A batch outcome in `result`, if any, with its ranges checked
/// (`start_cursor <= end_cursor`).
pub fn batch_outcome(result: &Value) -> Option<Result<BatchOutcome, String>> {
    read::<BatchOutcome>(result, BATCH_KEY).map(|r| {
        r.and_then(|o| {
            if let BatchOutcome::CreateBatches {
                cursor_configs: Some(configs),
                ..
            } = &o
            {
                if let Some(c) = configs.iter().find(|c| c.start_cursor > c.end_cursor) {
                    return Err(format!(
                        "`result.{BATCH_KEY}`: batch `{}` starts after it ends ({} > {})",
                        c.batch_id, c.start_cursor, c.end_cursor
                    ));
                }
            } else if let BatchOutcome::CreateBatches {
                total_items: None,
                cursor_configs: None,
                ..
            } = &o
            {
                return Err(format!(
                    "`result.{BATCH_KEY}`: create_batches needs `total_items` or `cursor_configs`"
                ));
            }
            Ok(o)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_decision_outcome_decodes_both_types() {
        let r = json!({"decision_point_outcome": {"type": "create_steps", "step_names": ["a", "b"]}, "why": 1});
        assert_eq!(
            decision_outcome(&r).unwrap().unwrap(),
            DecisionOutcome::CreateSteps {
                step_names: vec!["a".into(), "b".into()]
            }
        );
        let r = json!({"decision_point_outcome": {"type": "no_branches"}});
        assert_eq!(decision_outcome(&r).unwrap().unwrap(), DecisionOutcome::NoBranches {});
        assert!(decision_outcome(&json!({"value": 1})).is_none());
    }

    #[test]
    fn a_malformed_decision_outcome_names_its_problem() {
        for (bad, word) in [
            (json!({"type": "activate"}), "activate"),
            (json!({"type": "create_steps"}), "step_names"),
            (json!({"type": "create_steps", "step_names": "a"}), "invalid type"),
            (json!({"type": "no_branches", "extra": 1}), "extra"),
        ] {
            let e = decision_outcome(&json!({ "decision_point_outcome": bad }))
                .unwrap()
                .unwrap_err();
            assert!(e.contains(word), "{e}");
        }
    }

    #[test]
    fn a_batch_outcome_takes_ranges_or_a_total() {
        let r = json!({"batch_processing_outcome": {"type": "create_batches", "total_items": 10, "batch_size": 4}});
        assert_eq!(
            batch_outcome(&r).unwrap().unwrap(),
            BatchOutcome::CreateBatches {
                total_items: Some(10),
                batch_size: Some(4),
                cursor_configs: None
            }
        );
        let r = json!({"batch_processing_outcome": {"type": "create_batches",
            "cursor_configs": [{"batch_id": "x", "start_cursor": 0, "end_cursor": 3}]}});
        assert!(batch_outcome(&r).unwrap().is_ok());
        let r = json!({"batch_processing_outcome": {"type": "no_batches"}});
        assert_eq!(batch_outcome(&r).unwrap().unwrap(), BatchOutcome::NoBatches {});
    }

    #[test]
    fn cutting_covers_every_item_once() {
        let bounds: Vec<(String, u64, u64)> = CursorConfig::cut(1000, 300)
            .into_iter()
            .map(|c| (c.batch_id, c.start_cursor, c.end_cursor))
            .collect();
        assert_eq!(
            bounds,
            vec![
                ("001".into(), 0, 300),
                ("002".into(), 300, 600),
                ("003".into(), 600, 900),
                ("004".into(), 900, 1000)
            ]
        );
        assert!(CursorConfig::cut(0, 10).is_empty());
        assert_eq!(CursorConfig::cut(3, 0).len(), 3, "a batch size of 0 counts as 1");
    }

    #[test]
    fn a_malformed_batch_outcome_names_its_problem() {
        for (bad, word) in [
            (json!({"type": "create_batches"}), "total_items"),
            (json!({"type": "create_batches", "total_items": -1}), "invalid value"),
            (
                json!({"type": "create_batches", "cursor_configs": [{"batch_id": "a", "start_cursor": 5, "end_cursor": 2}]}),
                "starts after it ends",
            ),
            (
                json!({"type": "create_batches", "cursor_configs": [{"batch_id": "a", "start_cursor": 0}]}),
                "end_cursor",
            ),
            (json!({"total_items": 10}), "type"),
        ] {
            let e = batch_outcome(&json!({ "batch_processing_outcome": bad }))
                .unwrap()
                .unwrap_err();
            assert!(e.contains(word), "{e}");
        }
    }
}
