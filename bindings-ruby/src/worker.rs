//! `Tasker::Native::Bridge`: [`tasker_core::bridge::Bridge`] one-to-one. Every
//! method takes and returns JSON text (the Ruby layer, `Tasker::Bridge`, encodes
//! and decodes it with Ruby's `json`); every call that waits releases the GVL.

use crate::convert::{blocking, guarded, interruptible};
use crate::runtime;
use magnus::{Error, Ruby};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_core::bridge::Bridge;

/// An embedded Tasker engine whose handlers run in Ruby, driven by polling.
#[magnus::wrap(class = "Tasker::Native::Bridge", free_immediately, size)]
pub struct RbBridge {
    inner: Arc<Bridge>,
}

impl Drop for RbBridge {
    /// A bridge collected without `shutdown` is shut down in the background (no
    /// grace: its outstanding steps are released), so its engine does not run on
    /// with nobody to serve it. In a forked child the runtime's threads are gone,
    /// so nothing is touched there.
    fn drop(&mut self) {
        let inner = self.inner.clone();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || match runtime::get() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = inner.shutdown(Duration::ZERO).await;
                });
            }
            Err(_) => std::mem::forget(inner),
        }));
    }
}

impl RbBridge {
    /// The core bridge (for the other native classes).
    pub(crate) fn bridge(&self) -> &Bridge {
        &self.inner
    }

    /// `Tasker::Native::Bridge.open(options_json)`: opens the database (applying
    /// migrations), registers the templates and starts the engine.
    pub fn open(ruby: &Ruby, options_json: String) -> Result<Self, Error> {
        let bridge = blocking(ruby, move || async move { Bridge::open_json(&options_json).await })?;
        Ok(Self {
            inner: Arc::new(bridge),
        })
    }

    /// `Tasker::Native::Bridge.loopback(concurrency)`: a bridge handing out
    /// synthetic events (benchmarks of the binding layer).
    pub fn loopback(ruby: &Ruby, concurrency: usize) -> Result<Self, Error> {
        let bridge = blocking(ruby, move || async move { Bridge::open_loopback(concurrency).await })?;
        Ok(Self {
            inner: Arc::new(bridge),
        })
    }

    /// A JSON array of at most `max_events` step events, waiting up to
    /// `timeout_ms` for the first (`[]` on timeout, during a drain, and when an
    /// interrupt stops the wait).
    pub fn poll_step_events(ruby: &Ruby, rb_self: &Self, max_events: u32, timeout_ms: u64) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        let polled = interruptible(ruby, move || async move {
            b.poll_step_events_json(max_events, timeout_ms).await
        })?;
        Ok(polled.unwrap_or_else(|| "[]".to_string()))
    }

    /// Records a JSON array of step results; the completion report JSON.
    pub fn complete_step_events(ruby: &Ruby, rb_self: &Self, results_json: String) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        blocking(
            ruby,
            move || async move { b.complete_step_events_json(&results_json).await },
        )
    }

    /// Moves the event's deadline and extends its lease; the new deadline (epoch ms).
    pub fn extend_lease(ruby: &Ruby, rb_self: &Self, event_id: String) -> Result<i64, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move { b.extend_lease_json(&event_id).await })
    }

    /// Hands the step back without a result (no attempt counted); false when the
    /// event is not held.
    pub fn release_step_event(ruby: &Ruby, rb_self: &Self, event_id: String) -> Result<bool, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move { b.release_step_event_json(&event_id).await })
    }

    /// Saves a checkpoint (cursor and data as JSON) and extends the lease.
    pub fn checkpoint_step(
        ruby: &Ruby,
        rb_self: &Self,
        event_id: String,
        cursor_json: String,
        data_json: String,
    ) -> Result<(), Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move {
            b.checkpoint_step_json(&event_id, &cursor_json, &data_json).await
        })
    }

    /// Publishes a domain event (payload JSON; mode `fast`, `durable` or
    /// `broadcast`; event id or nil); the event as JSON. With an event id it rides
    /// with that step's result; without, a durable event is stored before this
    /// returns (GVL released).
    pub fn publish_domain_event(
        ruby: &Ruby,
        rb_self: &Self,
        name: String,
        payload_json: String,
        mode: String,
        event_id: Option<String>,
    ) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move {
            b.publish_domain_event_json(&name, &payload_json, &mode, event_id.as_deref())
                .await
        })
    }

    /// State and counters as JSON.
    pub fn worker_status(ruby: &Ruby, rb_self: &Self) -> Result<String, Error> {
        guarded(ruby, || rb_self.inner.worker_status_json())
    }

    /// Stops claiming, waits up to `grace_ms` for outstanding results, releases
    /// the rest: `{"drained": n, "released": n}`. Idempotent.
    pub fn shutdown(ruby: &Ruby, rb_self: &Self, grace_ms: u64) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move { b.shutdown_json(grace_ms).await })
    }

    /// Creates a task from a task request JSON; the task view JSON.
    pub fn create_task(ruby: &Ruby, rb_self: &Self, request_json: String) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move { b.create_task_json(&request_json).await })
    }

    /// The task view JSON.
    pub fn get_task(ruby: &Ruby, rb_self: &Self, task_uuid: String) -> Result<String, Error> {
        let b = rb_self.inner.clone();
        blocking(ruby, move || async move { b.get_task_json(&task_uuid).await })
    }

    /// Waits until the task is finished; the task view JSON (`Tasker::WaitTimedOut`
    /// when `timeout_ms` runs out first). An interrupt that raises nothing (a
    /// signal trap) resumes the wait for the time left.
    pub fn wait_for_task(ruby: &Ruby, rb_self: &Self, task_uuid: String, timeout_ms: u64) -> Result<String, Error> {
        let until = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let left = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            let (b, uuid) = (rb_self.inner.clone(), task_uuid.clone());
            if let Some(view) = interruptible(ruby, move || async move { b.wait_for_task_json(&uuid, left).await })? {
                return Ok(view);
            }
        }
    }
}
