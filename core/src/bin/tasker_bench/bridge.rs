//! `--bridge`: the cost of the polling contract itself, in Rust, through the same
//! JSON forms a binding calls (poll → parse events → build results → complete),
//! on a loopback bridge (synthetic events, no database work). The language
//! bindings' own benchmarks run the same loop through their FFI layer; the
//! difference is what the binding costs.

use serde_json::{json, Value};
use std::time::Instant;
use tasker_core::bridge::Bridge;

/// Runs the loopback measurement at batch sizes 1 and 64.
pub async fn run(quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let steps = if quick { 2_000 } else { 100_000 };
    for batch in [1usize, 64] {
        let bridge = Bridge::open_loopback(batch).await?;
        // Warm up, then measure.
        round_trips(&bridge, batch, steps / 10).await?;
        let started = Instant::now();
        let done = round_trips(&bridge, batch, steps).await?;
        let per_step_us = started.elapsed().as_secs_f64() * 1e6 / done as f64;
        println!("bridge_rust_us_per_step_batch{batch}={per_step_us:.2}");
        bridge.shutdown(std::time::Duration::ZERO).await?;
    }
    Ok(())
}

async fn round_trips(bridge: &Bridge, batch: usize, steps: usize) -> Result<usize, Box<dyn std::error::Error>> {
    let mut done = 0;
    while done < steps {
        let events: Vec<Value> = serde_json::from_str(&bridge.poll_step_events_json(batch as u32, 1000).await?)?;
        let results: Vec<Value> = events
            .iter()
            .map(|e| json!({"event_id": e["event_id"], "success": true, "result": {"value": 1}}))
            .collect();
        done += results.len();
        bridge
            .complete_step_events_json(&serde_json::to_string(&results)?)
            .await?;
    }
    Ok(done)
}
