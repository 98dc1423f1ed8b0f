//! The native library of the `tasker-core` gem (`tasker_native.so`): the bridge
//! of `tasker_core` one-to-one as `Tasker::Native::Bridge` (and its durable event
//! subscriber as `Tasker::Native::EventSubscriber`), log forwarding and
//! the runtime's PID. The Ruby layer (`lib/tasker/`) builds the exceptions, the
//! handler API, `Worker`, `Engine` and `Client` on top.

mod convert;
mod errors;
mod runtime;
mod subscriber;
mod worker;

use magnus::prelude::*;
use magnus::{function, method, Error, Ruby};

/// Takes up to `max` buffered log records of the core, oldest first, as a JSON
/// array of `{level, target, message, fields, timestamp_ms}`.
fn drain_log_records(ruby: &Ruby, max: usize) -> Result<String, Error> {
    convert::plain(ruby, || Ok(tasker_core::bridge::drain_log_records_json(max)))
}

/// Starts buffering the core's log records at `level` (`trace`, `debug`, `info`,
/// `warn`, `error`, or a filter directive; `RUST_LOG` wins when set). Once per
/// process; later calls change nothing. False when another tracing subscriber
/// was installed first (then nothing is forwarded).
fn install_log_forwarding(ruby: &Ruby, level: String) -> Result<bool, Error> {
    convert::plain(ruby, || tasker_core::bridge::install_log_forwarding(&level))
}

/// The PID of the process that created the tokio runtime (nil before first use).
fn runtime_pid() -> Option<u32> {
    runtime::created_in()
}

/// Panics in Rust, inside a blocking call (GVL released, on the runtime) or a
/// quick one: for the tests of the panic path (it must raise
/// `Tasker::InternalError`, never crash the process).
fn panic_for_test(ruby: &Ruby, message: String, blocking: bool) -> Result<(), Error> {
    if blocking {
        convert::blocking(ruby, move || async move { panic!("{message}") })
    } else {
        convert::guarded(ruby, move || panic!("{message}"))
    }
}

/// Every error code of the bridge.
fn error_codes() -> Vec<&'static str> {
    tasker_core::bridge::BridgeError::CODES.to_vec()
}

#[magnus::init(name = "tasker_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let tasker = ruby.define_module("Tasker")?;
    let native = tasker.define_module("Native")?;
    native.const_set("VERSION", env!("CARGO_PKG_VERSION"))?;
    native.define_singleton_method("drain_log_records", function!(drain_log_records, 1))?;
    native.define_singleton_method("install_log_forwarding", function!(install_log_forwarding, 1))?;
    native.define_singleton_method("runtime_pid", function!(runtime_pid, 0))?;
    native.define_singleton_method("error_codes", function!(error_codes, 0))?;
    native.define_singleton_method("panic_for_test", function!(panic_for_test, 2))?;

    let bridge = native.define_class("Bridge", ruby.class_object())?;
    bridge.undef_default_alloc_func();
    bridge.define_singleton_method("open", function!(worker::RbBridge::open, 1))?;
    bridge.define_singleton_method("loopback", function!(worker::RbBridge::loopback, 1))?;
    bridge.define_method("poll_step_events", method!(worker::RbBridge::poll_step_events, 2))?;
    bridge.define_method(
        "complete_step_events",
        method!(worker::RbBridge::complete_step_events, 1),
    )?;
    bridge.define_method("extend_lease", method!(worker::RbBridge::extend_lease, 1))?;
    bridge.define_method("release_step_event", method!(worker::RbBridge::release_step_event, 1))?;
    bridge.define_method("checkpoint_step", method!(worker::RbBridge::checkpoint_step, 3))?;
    bridge.define_method(
        "publish_domain_event",
        method!(worker::RbBridge::publish_domain_event, 4),
    )?;
    bridge.define_method("worker_status", method!(worker::RbBridge::worker_status, 0))?;
    bridge.define_method("shutdown", method!(worker::RbBridge::shutdown, 1))?;
    bridge.define_method("create_task", method!(worker::RbBridge::create_task, 1))?;
    bridge.define_method("get_task", method!(worker::RbBridge::get_task, 1))?;
    bridge.define_method("wait_for_task", method!(worker::RbBridge::wait_for_task, 2))?;

    let subscriber = native.define_class("EventSubscriber", ruby.class_object())?;
    subscriber.undef_default_alloc_func();
    subscriber.define_singleton_method("open", function!(subscriber::RbEventSubscriber::open, 3))?;
    subscriber.define_method("poll", method!(subscriber::RbEventSubscriber::poll, 2))?;
    subscriber.define_method("ack", method!(subscriber::RbEventSubscriber::ack, 1))?;
    subscriber.define_method("rewind", method!(subscriber::RbEventSubscriber::rewind, 0))?;
    subscriber.define_method("consumer", method!(subscriber::RbEventSubscriber::consumer, 0))?;
    Ok(())
}
