//! The native addon of the `tasker-core` npm package (`tasker_node.*.node`): the
//! bridge of `tasker_core` one-to-one (`NativeBridge`, and its durable event
//! subscriber `NativeEventSubscriber`), coded errors, and log
//! forwarding. The TypeScript layer (`ts/`) builds the handler API, `Worker`,
//! `Engine` and `Client` on top.

mod convert;
mod errors;
mod runtime;
mod subscriber;
mod worker;

use napi_derive::napi;

/// Builds the process's tokio runtime and hands it to napi before any export runs.
#[napi_derive::module_init]
fn init() {
    runtime::install();
}

/// Takes up to `max` (default 1000) buffered log records of the core, oldest
/// first, as a JSON array of `{level, target, message, fields, timestamp_ms}`.
#[napi]
pub fn drain_log_records(max: Option<u32>) -> napi::Result<String> {
    convert::plain(|| Ok(tasker_core::bridge::drain_log_records_json(max.unwrap_or(1000) as usize)))
}

/// Starts buffering the core's log records at `level` (`trace`, `debug`, `info`,
/// `warn`, `error`, or a filter directive; `RUST_LOG` wins when set). Once per
/// process; later calls change nothing. False when another tracing subscriber was
/// installed first (then nothing is forwarded).
#[napi]
pub fn install_log_forwarding(level: Option<String>) -> napi::Result<bool> {
    convert::plain(|| tasker_core::bridge::install_log_forwarding(level.as_deref().unwrap_or("info")))
}

/// The PID of the process that loaded the addon.
#[napi]
pub fn runtime_pid() -> Option<u32> {
    runtime::created_in()
}

/// The crate version of the addon.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Every error code a Tasker error can carry.
#[napi]
pub fn error_codes() -> Vec<String> {
    tasker_core::bridge::BridgeError::CODES
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// Panics on purpose, for the test that nothing crosses the boundary as a panic.
#[napi]
pub fn panic_for_test(message: String) -> napi::Result<()> {
    convert::plain(|| -> Result<(), tasker_core::bridge::BridgeError> { panic!("{message}") })
}

/// As [`panic_for_test`], inside an async export.
#[napi]
pub async fn panic_for_test_async(message: String) -> napi::Result<()> {
    convert::deferred(convert::call(async move {
        if !message.is_empty() {
            panic!("{message}");
        }
        Ok(())
    }))
    .await
}
