//! `tasker._native.Bridge`: [`tasker_core::bridge::Bridge`] one-to-one. Every
//! method takes and returns JSON text (the Python layer, `tasker.Bridge`, encodes
//! and decodes it); every call that waits releases the GIL.

use crate::convert::{blocking, guarded};
use pyo3::prelude::*;
use std::sync::Arc;
use tasker_core::bridge::Bridge;

/// An embedded Tasker engine whose handlers run in Python, driven by polling.
/// Open it with the options JSON; methods take and return JSON text.
#[pyclass(name = "Bridge", module = "tasker._native", frozen)]
pub struct PyBridge {
    inner: Arc<Bridge>,
}

impl PyBridge {
    /// The core bridge (for the other native classes).
    pub(crate) fn bridge(&self) -> &Bridge {
        &self.inner
    }
}

#[pymethods]
impl PyBridge {
    /// Opens the database (applying migrations), registers the templates and
    /// starts the engine. `options_json`: `{"database_url": ..., "namespaces": [...],
    /// "concurrency": 8, "templates": [...], ...}` (unknown keys are refused).
    #[new]
    fn new(py: Python<'_>, options_json: String) -> PyResult<Self> {
        let bridge = blocking(py, move || async move { Bridge::open_json(&options_json).await })?;
        Ok(Self {
            inner: Arc::new(bridge),
        })
    }

    /// A bridge for benchmarks of the binding layer: an endless supply of synthetic
    /// step events (at most `concurrency` at once, namespace and callable
    /// `loopback`) whose results are dropped; no database work.
    #[staticmethod]
    #[pyo3(signature = (concurrency=64))]
    fn open_loopback(py: Python<'_>, concurrency: usize) -> PyResult<Self> {
        let bridge = blocking(py, move || async move { Bridge::open_loopback(concurrency).await })?;
        Ok(Self {
            inner: Arc::new(bridge),
        })
    }

    /// Waits up to `timeout_ms` for claimed steps; a JSON array of at most
    /// `max_events` step events (`[]` on timeout and during a drain).
    fn poll_step_events(&self, py: Python<'_>, max_events: u32, timeout_ms: u64) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(py, move || async move {
            b.poll_step_events_json(max_events, timeout_ms).await
        })
    }

    /// Records a JSON array of step results; answers the completion report JSON.
    fn complete_step_events(&self, py: Python<'_>, results_json: String) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(
            py,
            move || async move { b.complete_step_events_json(&results_json).await },
        )
    }

    /// Moves the event's deadline and extends its lease; the new deadline (epoch ms).
    fn extend_lease(&self, py: Python<'_>, event_id: String) -> PyResult<i64> {
        let b = self.inner.clone();
        blocking(py, move || async move { b.extend_lease_json(&event_id).await })
    }

    /// Hands the step back without a result (no attempt counted); false when the
    /// event is not held.
    fn release_step_event(&self, py: Python<'_>, event_id: String) -> PyResult<bool> {
        let b = self.inner.clone();
        blocking(py, move || async move { b.release_step_event_json(&event_id).await })
    }

    /// Saves a checkpoint (cursor and data as JSON) and extends the lease.
    fn checkpoint_step(
        &self,
        py: Python<'_>,
        event_id: String,
        cursor_json: String,
        data_json: String,
    ) -> PyResult<()> {
        let b = self.inner.clone();
        blocking(py, move || async move {
            b.checkpoint_step_json(&event_id, &cursor_json, &data_json).await
        })
    }

    /// Publishes a domain event (payload JSON; mode `fast`, `durable` or
    /// `broadcast`); answers the event as JSON. With `event_id` it rides with that
    /// step's result; without, a durable event is stored before this returns.
    #[pyo3(signature = (name, payload_json, mode="fast".to_string(), event_id=None))]
    fn publish_domain_event(
        &self,
        py: Python<'_>,
        name: String,
        payload_json: String,
        mode: String,
        event_id: Option<String>,
    ) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(py, move || async move {
            b.publish_domain_event_json(&name, &payload_json, &mode, event_id.as_deref())
                .await
        })
    }

    /// State and counters as JSON.
    fn worker_status(&self, py: Python<'_>) -> PyResult<String> {
        guarded(py, || self.inner.worker_status_json())
    }

    /// Stops claiming, waits up to `grace_ms` for outstanding results, releases
    /// the rest: `{"drained": n, "released": n}`. Idempotent.
    fn shutdown(&self, py: Python<'_>, grace_ms: u64) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(py, move || async move { b.shutdown_json(grace_ms).await })
    }

    /// Creates a task from a task request JSON; answers the task view JSON.
    fn create_task(&self, py: Python<'_>, request_json: String) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(py, move || async move { b.create_task_json(&request_json).await })
    }

    /// The task view JSON.
    fn get_task(&self, py: Python<'_>, task_uuid: String) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(py, move || async move { b.get_task_json(&task_uuid).await })
    }

    /// Waits until the task is finished; the task view JSON (`WaitTimedOut` when
    /// `timeout_ms` runs out first).
    fn wait_for_task(&self, py: Python<'_>, task_uuid: String, timeout_ms: u64) -> PyResult<String> {
        let b = self.inner.clone();
        blocking(
            py,
            move || async move { b.wait_for_task_json(&task_uuid, timeout_ms).await },
        )
    }

    fn __repr__(&self) -> String {
        "<tasker._native.Bridge>".to_string()
    }
}
