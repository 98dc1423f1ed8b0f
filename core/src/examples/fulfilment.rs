//! The Rust step of the polyglot order-fulfilment demo (`demo/order_fulfilment.yaml`,
//! `scripts/demo`): `ship_order` books the shipment once the other languages have
//! reserved the stock (Ruby) and captured the payment (TypeScript). Built into the
//! core so that `tasker worker` runs it.

use crate::worker::{StepContext, StepResult};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long booking a shipment pretends to take (a carrier's API).
const CARRIER_CALL: Duration = Duration::from_millis(150);

/// Books the shipment: carrier and delivery estimate by destination country, a
/// tracking number derived from the order id (the same order always gets the same
/// one), one parcel per reserved unit.
pub async fn ship_order(ctx: StepContext) -> StepResult {
    let (Some(reservation), Some(payment)) = (ctx.dependency("reserve_inventory"), ctx.dependency("charge_payment"))
    else {
        return StepResult::permanent_failure(
            "ship_order needs the results of reserve_inventory and charge_payment",
            "missing_dependency",
        );
    };
    if payment["status"] != "captured" {
        return StepResult::permanent_failure(
            format!("payment {} was not captured", payment["payment_id"]),
            "payment_not_captured",
        );
    }
    let order_id = ctx.input("order_id").and_then(Value::as_str).unwrap_or_default();
    let country = ctx
        .input("shipping_address")
        .and_then(|a| a["country"].as_str())
        .unwrap_or_default();
    let (carrier, prefix, eta_days) = match country {
        "GB" => ("Royal Mail", "RM", 2),
        "DE" | "FR" | "NL" | "IE" => ("DHL", "JD", 4),
        "US" => ("USPS", "US", 5),
        _ => ("DHL Express", "DX", 7),
    };
    let parcels: u64 = reservation["lines"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| l["quantity"].as_u64()).sum())
        .unwrap_or(0);
    let digest = Sha256::digest(order_id.as_bytes());
    let serial = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000_000;
    tokio::time::sleep(CARRIER_CALL).await;
    StepResult::success(json!({
        "shipment_id": format!("SHP-{order_id}"),
        "carrier": carrier,
        "tracking_number": format!("{prefix}{serial:09}{country}"),
        "parcels": parcels,
        "eta_days": eta_days,
        "handled_by": format!("rust (tasker-core {})", env!("CARGO_PKG_VERSION")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn context(status: &str) -> StepContext {
        StepContext {
            task_uuid: Uuid::nil(),
            step_uuid: Uuid::nil(),
            step_name: "ship_order".into(),
            namespace: "fulfilment".into(),
            task_name: "order_fulfilment".into(),
            context: json!({"order_id": "A-1042", "shipping_address": {"country": "GB"}}),
            dependency_results: BTreeMap::from([
                (
                    "reserve_inventory".to_string(),
                    json!({"lines": [{"sku": "BOOK-042", "quantity": 2}, {"sku": "MUG-007", "quantity": 1}]}),
                ),
                (
                    "charge_payment".to_string(),
                    json!({"status": status, "payment_id": "PAY-1"}),
                ),
            ]),
            initialization: json!({}),
            attempt: 1,
            max_attempts: 3,
            checkpoint: None,
            correlation_id: Uuid::nil(),
        }
    }

    #[tokio::test]
    async fn ship_order_books_one_parcel_per_reserved_unit_with_a_tracking_number_of_the_order() {
        let first = ship_order(context("captured")).await;
        assert!(first.success, "{first:?}");
        assert_eq!(first.result["carrier"], "Royal Mail");
        assert_eq!(first.result["parcels"], 3);
        assert_eq!(first.result["eta_days"], 2);
        let tracking = first.result["tracking_number"].as_str().unwrap().to_string();
        assert!(
            tracking.starts_with("RM") && tracking.ends_with("GB") && tracking.len() == 13,
            "{tracking}"
        );
        let again = ship_order(context("captured")).await;
        assert_eq!(
            again.result["tracking_number"],
            tracking.as_str(),
            "same order, same number"
        );
    }

    #[tokio::test]
    async fn ship_order_refuses_a_payment_that_was_not_captured() {
        let r = ship_order(context("declined")).await;
        let e = r.error.expect("a failure");
        assert_eq!((e.error_type.as_str(), e.retryable), ("payment_not_captured", false));
    }
}
