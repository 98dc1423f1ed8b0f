//! The handlers of `examples/csv_batch.yaml`: a batchable analyzer splits a
//! generated CSV of sales into batches, one batch worker per batch sums its rows
//! (saving a checkpoint every `checkpoint_every` rows, and resuming from the last
//! one when an earlier attempt was lost or failed), and a convergence step adds
//! the batches up.
//!
//! The CSV is generated here ([`generate_csv`]), the same in every language's
//! version of the example: row `i` (0-based) is `id = i + 1`,
//! `sku = "SKU-" + (i % 25)` as three digits, `quantity = (i * 7) % 10 + 1`,
//! `unit_price_cents = 100 + (i * 37) % 900`.

use crate::worker::handler::Batchable;
use crate::worker::{CheckpointError, HandlerRegistry, StepContext, StepHandler, StepResult};
use async_trait::async_trait;
use serde_json::{json, Value};

/// The CSV's header line.
pub const CSV_HEADER: &str = "id,sku,quantity,unit_price_cents";

/// Registers `csv_analyze`, `csv_process_batch` and `csv_aggregate`.
pub(super) fn register(r: &mut HandlerRegistry) {
    r.register("csv_analyze", AnalyzeCsv);
    r.register_fn("csv_process_batch", |ctx| async move { process_batch(&ctx).await });
    r.register_fn("csv_aggregate", |ctx| async move { aggregate(&ctx) });
}

/// The example's CSV: the header, then `rows` rows of sales, `\n`-separated.
pub fn generate_csv(rows: u64) -> String {
    let mut text = String::with_capacity(32 * (rows as usize + 1));
    text.push_str(CSV_HEADER);
    for i in 0..rows {
        let (quantity, price) = ((i * 7) % 10 + 1, 100 + (i * 37) % 900);
        text.push_str(&format!("\n{},SKU-{:03},{quantity},{price}", i + 1, i % 25));
    }
    text
}

/// Sums over rows: how many, their quantities, and quantity × unit price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rows summed.
    pub rows: i64,
    /// Sum of `quantity`.
    pub quantity: i64,
    /// Sum of `quantity * unit_price_cents`.
    pub revenue_cents: i64,
}

impl Totals {
    fn from_json(v: Option<&Value>) -> Self {
        let field = |k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_i64).unwrap_or(0);
        Self {
            rows: field("rows"),
            quantity: field("quantity"),
            revenue_cents: field("revenue_cents"),
        }
    }

    fn to_json(self) -> Value {
        json!({ "rows": self.rows, "quantity": self.quantity, "revenue_cents": self.revenue_cents })
    }

    /// Adds one CSV data line.
    fn add_line(&mut self, line: &str) -> Result<(), String> {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |i: usize| -> Result<i64, String> {
            fields
                .get(i)
                .and_then(|f| f.trim().parse().ok())
                .ok_or_else(|| format!("bad CSV line `{line}`"))
        };
        let (quantity, price) = (number(2)?, number(3)?);
        self.rows += 1;
        self.quantity += quantity;
        self.revenue_cents += quantity * price;
        Ok(())
    }
}

/// Counts the CSV's rows and asks for batches of the template's `batch_size`.
struct AnalyzeCsv;

#[async_trait]
impl StepHandler for AnalyzeCsv {
    async fn call(&self, ctx: &StepContext) -> StepResult {
        let Some(rows) = ctx.input("rows").and_then(Value::as_u64) else {
            return StepResult::permanent_failure("context needs an integer `rows`", "invalid_input");
        };
        let total = generate_csv(rows).lines().count().saturating_sub(1) as u64;
        if total == 0 {
            return self.no_batches();
        }
        let mut r = self.create_batches(total, None);
        r.result["rows"] = json!(total);
        r
    }
}

impl Batchable for AnalyzeCsv {}

/// Sums the rows of its cursor range, from the last checkpoint on when there is one.
async fn process_batch(ctx: &StepContext) -> StepResult {
    let Some((start, end)) = ctx.cursor_range() else {
        return StepResult::permanent_failure("this step has no cursor range", "invalid_input");
    };
    let rows = ctx.input("rows").and_then(Value::as_u64).unwrap_or(0);
    let every = ctx
        .initialization
        .get("checkpoint_every")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    // Totals so far: the checkpoint's, when this attempt resumes from one.
    let mut totals = Totals::from_json(ctx.checkpoint.as_ref().and_then(|c| c.get("data")));
    let text = generate_csv(rows);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    for i in start..end {
        let Some(line) = lines.get(i as usize) else {
            return StepResult::permanent_failure(format!("row {i} is past the end of the CSV"), "invalid_input");
        };
        if let Err(message) = totals.add_line(line) {
            return StepResult::permanent_failure(message, "invalid_input");
        }
        let next = i + 1;
        if every > 0 && next % every == 0 && next < end {
            match ctx.save_checkpoint(json!(next), totals.to_json()).await {
                Ok(()) => {}
                Err(CheckpointError::ClaimLost(_)) => {
                    return StepResult::failure("this attempt lost its claim on the step", "claim_lost")
                }
                Err(e) => tracing::warn!(error = %e, "checkpoint not saved; continuing"),
            }
        }
    }
    let mut result = totals.to_json();
    result["batch_id"] = ctx
        .initialization
        .get("cursor")
        .and_then(|c| c.get("batch_id"))
        .cloned()
        .unwrap_or(Value::Null);
    StepResult::success(result)
}

/// Adds up the batches' totals (every parent result with a `batch_id`).
fn aggregate(ctx: &StepContext) -> StepResult {
    let mut sum = Totals::default();
    let mut batches = 0;
    for result in ctx.dependency_results.values().filter(|r| r.get("batch_id").is_some()) {
        let t = Totals::from_json(Some(result));
        sum.rows += t.rows;
        sum.quantity += t.quantity;
        sum.revenue_cents += t.revenue_cents;
        batches += 1;
    }
    let mut result = sum.to_json();
    result["batches"] = json!(batches);
    StepResult::success(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_csv_has_its_header_and_rows() {
        let text = generate_csv(3);
        assert_eq!(
            text,
            "id,sku,quantity,unit_price_cents\n1,SKU-000,1,100\n2,SKU-001,8,137\n3,SKU-002,5,174"
        );
        let mut t = Totals::default();
        for line in text.lines().skip(1) {
            t.add_line(line).unwrap();
        }
        assert_eq!(
            t,
            Totals {
                rows: 3,
                quantity: 14,
                revenue_cents: 100 + 8 * 137 + 5 * 174
            }
        );
    }
}
