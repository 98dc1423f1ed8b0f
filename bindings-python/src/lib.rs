//! The native module of the `tasker` Python package (`tasker._native`): the bridge
//! of `tasker_core` one-to-one, its exceptions, and log forwarding. The Python
//! layer (`python/tasker/`) builds the handler API, `Worker`, `Engine` and
//! `Client` on top.

mod convert;
mod errors;
mod runtime;
mod subscriber;
mod worker;

use pyo3::prelude::*;

/// Takes up to `max` buffered log records of the core, oldest first, as a JSON
/// array of `{level, target, message, fields, timestamp_ms}`.
#[pyfunction]
#[pyo3(signature = (max=1000))]
fn drain_log_records(py: Python<'_>, max: usize) -> PyResult<String> {
    convert::plain(py, || Ok(tasker_core::bridge::drain_log_records_json(max)))
}

/// Starts buffering the core's log records at `level` (`trace`, `debug`, `info`,
/// `warn`, `error`, or a filter directive; `RUST_LOG` wins when set). Once per
/// process; later calls change nothing. False when another tracing subscriber was
/// installed first (then nothing is forwarded).
#[pyfunction]
#[pyo3(signature = (level="info"))]
fn install_log_forwarding(py: Python<'_>, level: &str) -> PyResult<bool> {
    convert::plain(py, || tasker_core::bridge::install_log_forwarding(level))
}

/// The PID of the process that created the tokio runtime (None before first use).
#[pyfunction]
fn runtime_pid() -> Option<u32> {
    runtime::created_in()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<worker::PyBridge>()?;
    m.add_class::<subscriber::PyEventSubscriber>()?;
    m.add_function(wrap_pyfunction!(drain_log_records, m)?)?;
    m.add_function(wrap_pyfunction!(install_log_forwarding, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_pid, m)?)?;
    errors::register(m)?;
    Ok(())
}
