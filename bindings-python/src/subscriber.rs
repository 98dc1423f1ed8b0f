//! `tasker._native.EventSubscriber`: [`tasker_core::bridge::BridgeSubscriber`]
//! one-to-one. `poll` waits in Rust with the GIL released, as `poll_step_events`
//! does; events cross as JSON text (the Python layer, `tasker.EventSubscriber`,
//! decodes them).

use crate::convert::{blocking, guarded};
use crate::worker::PyBridge;
use pyo3::prelude::*;
use std::sync::Arc;
use tasker_core::bridge::BridgeSubscriber;

/// A named consumer of durable domain events, read at least once.
#[pyclass(name = "EventSubscriber", module = "tasker._native", frozen)]
pub struct PyEventSubscriber {
    inner: Arc<BridgeSubscriber>,
}

#[pymethods]
impl PyEventSubscriber {
    /// A subscriber on `bridge`'s database reading as `consumer`; with
    /// `name_pattern`, only events whose name matches it (`*` matches anything).
    #[new]
    #[pyo3(signature = (bridge, consumer, name_pattern=None))]
    fn new(py: Python<'_>, bridge: &PyBridge, consumer: &str, name_pattern: Option<&str>) -> PyResult<Self> {
        let inner = guarded(py, || bridge.bridge().event_subscriber(consumer, name_pattern))?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Waits up to `timeout_ms` for events; a JSON array of at most `max_events`
    /// stored events, oldest first (`[]` when the time runs out).
    fn poll(&self, py: Python<'_>, max_events: u32, timeout_ms: u64) -> PyResult<String> {
        let s = self.inner.clone();
        blocking(py, move || async move { s.poll_json(max_events, timeout_ms).await })
    }

    /// Acknowledges every event up to `sequence`; the consumer's stored offset.
    fn ack(&self, py: Python<'_>, sequence: i64) -> PyResult<i64> {
        let s = self.inner.clone();
        blocking(py, move || async move { s.ack(sequence).await })
    }

    /// Starts again after the acknowledged sequence (redelivers what was not acked).
    fn rewind(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.inner.clone();
        blocking(py, move || async move {
            s.rewind().await;
            Ok(())
        })
    }

    /// The consumer's name.
    #[getter]
    fn consumer(&self) -> String {
        self.inner.consumer().to_string()
    }

    fn __repr__(&self) -> String {
        format!("<tasker._native.EventSubscriber consumer={:?}>", self.inner.consumer())
    }
}
