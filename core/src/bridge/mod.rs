//! The bridge: the one API every language binding wraps one-to-one (Python's and
//! Ruby's `Bridge`, TypeScript's `Bridge` in camelCase). It runs an embedded
//! engine (orchestration + worker) in the host process and hands the steps whose
//! handlers live in the host language to the host through a polling contract:
//!
//! - `poll_step_events(max_events, timeout_ms)`: waits (in Rust, with the host's
//!   interpreter lock released by the binding) for claimed steps, and hands them
//!   out as [`StepEvent`](crate::contract::StepEvent)s. The worker never holds
//!   more claimed steps than `concurrency`.
//! - `complete_step_events(results)`: a batch of results, each checked against the
//!   contract; a broken one becomes an `invalid_result` failure, never a lost step.
//! - `extend_lease`, `release_step_event`, `checkpoint_step`: what a running
//!   handler can do about its step. A step whose deadline passes fails as `timeout`.
//! - `publish_domain_event` (ADR 0010), `worker_status`, `shutdown(grace_ms)`.
//! - `event_subscriber(consumer, name_pattern)`: a [`BridgeSubscriber`] reading
//!   durable domain events at least once (`poll`, `ack`, `rewind`).
//! - A client: `create_task`, `get_task`, `wait_for_task`.
//!
//! Every method has a `*_json` form taking and returning JSON text: bindings pass
//! one JSON document per call and parse it with their own JSON library. The
//! messages are documented in `proto-contract/`.

pub mod error;
pub mod logs;
pub mod loopback;
pub mod options;
pub mod pending;
pub mod runtime;
pub mod subscriber;

pub use error::BridgeError;
pub use logs::{drain_log_records, drain_log_records_json, install_log_forwarding, LogRecord};
pub use options::BridgeOptions;
pub use subscriber::BridgeSubscriber;

use crate::clock::{self, SharedClock};
use crate::contract::step_result::invalid_result;
use crate::contract::{
    CompletionReport, DomainEventMode, InvalidResult, RejectedResult, StepCompletion, StepEvent, TaskRequest,
};
use crate::engine::Engine;
use crate::events::domain::DomainEvent;
use crate::orchestration::task_request::TemplateRef;
use crate::orchestration::template_lookup::{resolve_template, template_records, TemplateLookupError};
use crate::orchestration::TaskSubmission;
use crate::store::{self, ReleaseReason, StepHeartbeatParams, StepReleaseManyParams, TaskView};
use crate::template::{load_file, LoadedTemplate, TemplateRegistry};
use crate::worker::channels::ForeignStep;
use crate::worker::handler_dispatch::completion_message;
use crate::worker::{DrainReport, HandlerRegistry, StepResult};
use pending::{PendingEvent, PendingEvents};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex, Notify};
use uuid::Uuid;

/// How often held events are checked against their deadlines.
pub const DEADLINE_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const CLOSED: u8 = 2;

/// An embedded engine whose host-language handlers are driven by polling.
#[derive(Debug)]
pub struct Bridge {
    engine: Engine,
    clock: SharedClock,
    foreign: Mutex<mpsc::Receiver<ForeignStep>>,
    pending: PendingEvents,
    state: Arc<AtomicU8>,
    draining: Arc<Notify>,
    namespaces: Vec<String>,
    lease_ms: i64,
    max_extension_ms: i64,
    created_in: u32,
    worker_id: Arc<str>,
    /// Set for a loopback bridge (its scratch database folder).
    loopback: Option<tempfile::TempDir>,
}

/// What `worker_status` returns.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeStatus {
    /// `running`, `draining` or `closed`.
    pub state: &'static str,
    /// Namespaces served.
    pub namespaces: Vec<String>,
    /// Events handed out and not yet answered.
    pub outstanding: usize,
    /// The worker's counters.
    #[serde(flatten)]
    pub worker: crate::worker::WorkerStatusSnapshot,
}

impl Bridge {
    /// Opens the store, applies migrations, registers the templates and starts the
    /// engine. Must run inside a tokio runtime.
    pub async fn open(options: BridgeOptions) -> Result<Self, BridgeError> {
        let config = options.engine_config()?;
        let mut registry = TemplateRegistry::new();
        for path in &options.templates {
            let loaded: Result<Vec<Arc<LoadedTemplate>>, _> = if path.is_dir() {
                TemplateRegistry::load_dir(path, None).map(|r| r.list())
            } else {
                load_file(path, None).map(|t| vec![Arc::new(t)])
            };
            let loaded =
                loaded.map_err(|e| BridgeError::InvalidConfig(format!("templates `{}`: {e}", path.display())))?;
            for t in loaded {
                registry.insert_shared(t);
            }
        }
        let store = store::open_with(&config.database_url, config.store_options())
            .await
            .map_err(|e| BridgeError::InvalidConfig(format!("cannot open {}: {e}", config.database_url)))?;
        let clock = clock::system();
        let records = template_records(&registry);
        if !records.is_empty() {
            store.template_register_many(records, clock.now_ms()).await?;
        }
        let handlers = if options.builtin_handlers {
            crate::examples::registry()
        } else {
            HandlerRegistry::new()
        };
        // Every foreign step holds a worker slot, so `concurrency` bounds this queue.
        let (foreign_tx, foreign_rx) = mpsc::channel(config.concurrency.max(1));
        let lease_ms = config.lease_ms;
        let engine = Engine::start_bridged(
            store,
            clock.clone(),
            config,
            handlers,
            registry,
            options.namespaces.clone(),
            Some(foreign_tx),
        );
        Ok(Self::assemble(
            engine,
            clock,
            foreign_rx,
            options.namespaces.clone(),
            lease_ms,
            options.max_lease_extension_ms(),
            None,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        engine: Engine,
        clock: SharedClock,
        foreign: mpsc::Receiver<ForeignStep>,
        namespaces: Vec<String>,
        lease_ms: i64,
        max_extension_ms: i64,
        scratch: Option<tempfile::TempDir>,
    ) -> Self {
        let worker_id = engine.worker_status().worker_id;
        let bridge = Self {
            engine,
            clock,
            foreign: Mutex::new(foreign),
            pending: PendingEvents::default(),
            state: Arc::new(AtomicU8::new(RUNNING)),
            draining: Arc::new(Notify::new()),
            namespaces,
            lease_ms,
            max_extension_ms,
            created_in: std::process::id(),
            worker_id: worker_id.into(),
            loopback: scratch,
        };
        bridge.spawn_deadline_sweep();
        bridge
    }

    /// A bridge for benchmarks of the binding layer: it hands out an endless
    /// supply of synthetic step events (at most `concurrency` at once) and drops
    /// their results, so a poll + complete round trip costs what the contract
    /// costs, with no database work. Its engine runs on a scratch SQLite file and
    /// serves no namespace.
    pub async fn open_loopback(concurrency: usize) -> Result<Self, BridgeError> {
        let scratch = tempfile::tempdir().map_err(|e| BridgeError::Internal(format!("scratch folder: {e}")))?;
        let url = format!("sqlite://{}/loopback.db", scratch.path().display());
        let config = crate::config::EngineConfig {
            database_url: url.clone(),
            ..Default::default()
        };
        let store = store::open_with(&url, config.store_options()).await?;
        let clock = clock::system();
        let engine = Engine::start_with(
            store,
            clock.clone(),
            config.clone(),
            HandlerRegistry::new(),
            TemplateRegistry::new(),
            vec![],
        );
        let foreign = loopback::spawn(concurrency.max(1), clock.clone());
        Ok(Self::assemble(
            engine,
            clock,
            foreign,
            vec![loopback::NAMESPACE.to_string()],
            config.lease_ms,
            options::DEFAULT_MAX_LEASE_EXTENSION_MS,
            Some(scratch),
        ))
    }

    /// [`Bridge::open`] from the options JSON.
    pub async fn open_json(options_json: &str) -> Result<Self, BridgeError> {
        Self::open(BridgeOptions::from_json(options_json)?).await
    }

    /// The embedded engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn check_usable(&self) -> Result<(), BridgeError> {
        let now = std::process::id();
        if now != self.created_in {
            return Err(BridgeError::Forked {
                created_in: self.created_in,
                now,
            });
        }
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Err(BridgeError::WorkerClosed);
        }
        Ok(())
    }

    fn is_draining(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// Fails held events whose deadline passed, until the bridge closes.
    fn spawn_deadline_sweep(&self) {
        let (pending, clock, state) = (self.pending.clone(), self.clock.clone(), self.state.clone());
        let worker_id = self.worker_id.clone();
        tokio::spawn(async move {
            while state.load(Ordering::Acquire) != CLOSED {
                tokio::time::sleep(DEADLINE_SWEEP_INTERVAL).await;
                for (_, event) in pending.take_expired(clock.now_ms()) {
                    let message = format!(
                        "handler exceeded its timeout of {} ms (no result by the deadline)",
                        event.step.timeout_ms
                    );
                    let elapsed = event.handed_out.elapsed().as_millis() as u64;
                    send_result(event, StepResult::failure(message, "timeout"), elapsed, &worker_id).await;
                }
            }
        });
    }

    /// Waits up to `timeout` for at least one claimed step and hands out up to
    /// `max_events`. Returns none on timeout and, promptly, during a drain.
    pub async fn poll_step_events(&self, max_events: usize, timeout: Duration) -> Result<Vec<StepEvent>, BridgeError> {
        self.check_usable()?;
        if self.namespaces.is_empty() {
            return Err(BridgeError::InvalidInput(
                "this bridge serves no namespaces, so it has no step events: pass namespaces when opening it".into(),
            ));
        }
        if self.is_draining() || max_events == 0 {
            return Ok(vec![]);
        }
        let draining = self.draining.notified();
        tokio::pin!(draining);
        draining.as_mut().enable();
        if self.is_draining() {
            return Ok(vec![]);
        }
        let mut queue = tokio::select! {
            q = self.foreign.lock() => q,
            _ = &mut draining => return Ok(vec![]),
            _ = tokio::time::sleep(timeout) => return Ok(vec![]),
        };
        let first = tokio::select! {
            s = queue.recv() => s,
            _ = &mut draining => return Ok(vec![]),
            _ = tokio::time::sleep(timeout) => return Ok(vec![]),
        };
        let Some(first) = first else {
            return Ok(vec![]);
        };
        let mut events = Vec::with_capacity(max_events.min(64));
        events.push(self.hand_out(first));
        while events.len() < max_events {
            match queue.try_recv() {
                Ok(step) => events.push(self.hand_out(step)),
                Err(_) => break,
            }
        }
        Ok(events)
    }

    fn hand_out(&self, step: ForeignStep) -> StepEvent {
        let event_id = Uuid::now_v7();
        let ForeignStep {
            dispatch,
            completion,
            slot_freed,
        } = step;
        let event = StepEvent::from_claim(event_id, &dispatch.step);
        self.pending.insert(
            event_id,
            PendingEvent {
                deadline_ms: dispatch.step.deadline_at,
                step: dispatch.step,
                permit: dispatch.permit,
                completion,
                slot_freed,
                handed_out: Instant::now(),
                published: Vec::new(),
            },
        );
        event
    }

    /// Records a batch of results (JSON values, each a step result). See the module
    /// docs for what happens to invalid and unknown ones.
    pub async fn complete_step_events(&self, results: Vec<Value>) -> Result<CompletionReport, BridgeError> {
        self.check_usable()?;
        let mut report = CompletionReport::default();
        for raw in results {
            let named = raw.get("event_id").cloned();
            let event_id = match named.as_ref().and_then(Value::as_str).map(Uuid::parse_str) {
                Some(Ok(id)) => id,
                _ => {
                    report.rejected.push(RejectedResult {
                        event_id: named.map(|v| v.to_string()),
                        reason: "the result has no valid `event_id` (a UUID string)".into(),
                    });
                    continue;
                }
            };
            let Some(event) = self.pending.take(&event_id) else {
                report.rejected.push(RejectedResult {
                    event_id: Some(event_id.to_string()),
                    reason: "no such event is held: it was completed, released or timed out, or never handed out"
                        .into(),
                });
                continue;
            };
            let elapsed = event.handed_out.elapsed().as_millis() as u64;
            let decoded = serde_json::from_value::<StepCompletion>(raw)
                .map_err(|e| format!("the result does not match the step result schema: {e}"))
                .and_then(|c| {
                    c.check()
                        .map(|_| c)
                        .map_err(|e| format!("the result breaks the contract: {e}"))
                });
            let (result, execution_ms) = match decoded {
                Ok(c) => {
                    let ms = c.execution_time_ms.unwrap_or(elapsed);
                    (c.into_step_result(), ms)
                }
                Err(message) => {
                    report.invalid.push(InvalidResult {
                        event_id,
                        message: message.clone(),
                    });
                    (invalid_result(message), elapsed)
                }
            };
            send_result(event, result, execution_ms, &self.worker_id).await;
            report.accepted += 1;
        }
        Ok(report)
    }

    /// Moves the attempt's deadline to now + the step's timeout (never more than
    /// the configured bound after the claim) and extends the lease; returns the
    /// new deadline (epoch ms).
    pub async fn extend_lease(&self, event_id: Uuid) -> Result<i64, BridgeError> {
        self.check_usable()?;
        self.extend(event_id, None).await
    }

    async fn extend(&self, event_id: Uuid, checkpoint: Option<Value>) -> Result<i64, BridgeError> {
        let now = self.clock.now_ms();
        let (step_uuid, claim_seq, wanted) = self
            .pending
            .with(&event_id, |e| {
                let claimed_at = e.step.deadline_at - e.step.timeout_ms;
                let wanted = (now + e.step.timeout_ms).min(claimed_at + self.max_extension_ms);
                (e.step.step_uuid, e.step.claim_seq, wanted)
            })
            .ok_or_else(|| BridgeError::UnknownEvent(event_id.to_string()))?;
        let deadline = self
            .heartbeat(event_id, step_uuid, claim_seq, Some(wanted), checkpoint)
            .await?;
        self.pending
            .with(&event_id, |e| e.deadline_ms = e.deadline_ms.max(deadline));
        Ok(deadline)
    }

    /// Saves a batch worker's checkpoint `{cursor, data, saved_at_ms}` on the step
    /// and, as progress is a sign of life, extends it like [`Bridge::extend_lease`];
    /// a retried attempt's event carries it.
    pub async fn checkpoint_step(&self, event_id: Uuid, cursor: Value, data: Value) -> Result<(), BridgeError> {
        self.check_usable()?;
        let checkpoint = json!({"cursor": cursor, "data": data, "saved_at_ms": self.clock.now_ms()});
        self.extend(event_id, Some(checkpoint)).await.map(|_| ())
    }

    async fn heartbeat(
        &self,
        event_id: Uuid,
        step_uuid: Uuid,
        claim_seq: i64,
        deadline_at: Option<i64>,
        checkpoint: Option<Value>,
    ) -> Result<i64, BridgeError> {
        let now = self.clock.now_ms();
        let params = StepHeartbeatParams {
            step_uuid,
            claim_seq,
            lease_expires_at: now + self.lease_ms,
            deadline_at,
            checkpoint,
            now,
        };
        match self.engine.store().step_heartbeat(params).await? {
            Some(deadline) => Ok(deadline),
            None => {
                // The claim is gone (its lease was swept, or it timed out): forget it.
                self.pending.take(&event_id);
                Err(BridgeError::UnknownEvent(event_id.to_string()))
            }
        }
    }

    /// Hands a step back to the queue without a failure and without counting an
    /// attempt; false when the event is not held.
    pub async fn release_step_event(&self, event_id: Uuid) -> Result<bool, BridgeError> {
        self.check_usable()?;
        let Some(event) = self.pending.take(&event_id) else {
            return Ok(false);
        };
        self.release(vec![event]).await?;
        Ok(true)
    }

    async fn release(&self, events: Vec<PendingEvent>) -> Result<usize, BridgeError> {
        if events.is_empty() {
            return Ok(0);
        }
        if self.loopback.is_some() {
            // A loopback bridge's steps exist nowhere: dropping one frees its slot.
            let n = events.len();
            let notify = events[0].slot_freed.clone();
            drop(events);
            notify.notify_one();
            return Ok(n);
        }
        let status = self.engine.worker_status_handle();
        let claims = events.iter().map(|e| (e.step.step_uuid, e.step.claim_seq)).collect();
        let released = self
            .engine
            .store()
            .step_release_many(StepReleaseManyParams {
                claims,
                reason: ReleaseReason::Released,
                now: self.clock.now_ms(),
                processor: self.worker_id.to_string(),
            })
            .await;
        for e in &events {
            status.forget(e.step.step_uuid);
        }
        let notify = events.first().map(|e| e.slot_freed.clone());
        drop(events); // frees the slots
        if let Some(n) = notify {
            n.notify_one();
        }
        Ok(released?.len())
    }

    /// Publishes a domain event (ADR 0010).
    ///
    /// With `event_id` (a step event this bridge holds) the event carries that
    /// step's identity, its payload is checked now against the schema the step
    /// declares for `name` (a failure is an `invalid_input` error, counted in
    /// `tasker_domain_events_rejected_total`), and it is delivered with the step's
    /// result: a durable (or broadcast) event is written in the result's
    /// transaction, only if the result is recorded; the in-process half goes out
    /// once the result is written. Without `event_id` it is delivered at once: a
    /// durable (or broadcast) event is written in a transaction of its own before
    /// this returns, the in-process half is published.
    pub async fn publish_domain_event(
        &self,
        name: &str,
        payload: Value,
        mode: DomainEventMode,
        event_id: Option<Uuid>,
    ) -> Result<DomainEvent, BridgeError> {
        self.check_usable()?;
        if name.trim().is_empty() {
            return Err(BridgeError::InvalidInput("a domain event needs a name".into()));
        }
        let mut event = DomainEvent {
            event_id: Uuid::now_v7(),
            name: name.to_string(),
            payload,
            mode,
            task_uuid: None,
            step_uuid: None,
            step_name: None,
            namespace: None,
            correlation_id: None,
            fired_at: self.clock.now_ms(),
        };
        let publisher = self.engine.domain_event_publisher();
        let Some(id) = event_id else {
            if mode != DomainEventMode::Fast {
                self.engine
                    .store()
                    .domain_event_insert_many(vec![event.clone()], self.clock.now_ms())
                    .await?;
                publisher.count(&event, "durable");
            }
            if mode != DomainEventMode::Durable {
                publisher.publish_now(event.clone());
            }
            return Ok(event);
        };
        let template = self
            .pending
            .with(&id, |e| {
                event.task_uuid = Some(e.step.task_uuid);
                event.step_uuid = Some(e.step.step_uuid);
                event.step_name = Some(e.step.name.clone());
                event.namespace = Some(e.step.task_namespace.clone());
                event.correlation_id = Some(e.step.correlation_id);
                (
                    e.step.task_namespace.clone(),
                    e.step.task_name.clone(),
                    e.step.task_version.clone(),
                    e.step.template_step_name.clone(),
                )
            })
            .ok_or_else(|| BridgeError::UnknownEvent(id.to_string()))?;
        let (namespace, task_name, version, step) = template;
        publisher
            .check_payload(
                &namespace,
                &task_name,
                &version,
                &step,
                name,
                &event.payload,
                "explicit",
            )
            .map_err(BridgeError::InvalidInput)?;
        self.pending
            .with(&id, |e| e.published.push(event.clone()))
            .ok_or_else(|| BridgeError::UnknownEvent(id.to_string()))?;
        Ok(event)
    }

    /// The worker's state and counters.
    pub fn worker_status(&self) -> BridgeStatus {
        BridgeStatus {
            state: match self.state.load(Ordering::Acquire) {
                RUNNING => "running",
                DRAINING => "draining",
                _ => "closed",
            },
            namespaces: self.namespaces.clone(),
            outstanding: self.pending.len(),
            worker: self.engine.worker_status(),
        }
    }

    /// Stops claiming, releases claimed steps not yet handed out, waits up to
    /// `grace` for outstanding events' results, releases the rest and closes.
    /// Later calls return an empty report.
    pub async fn shutdown(&self, grace: Duration) -> Result<DrainReport, BridgeError> {
        if self
            .state
            .compare_exchange(RUNNING, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(DrainReport::default());
        }
        self.draining.notify_waiters();
        // Steps queued for the host but never handed out go back at once, while
        // the engine drains (it finishes once none of them is left). The two run
        // side by side: a release must not wait on a drain that waits on it.
        let stopped = Notify::new();
        let release_loop = async {
            let mut queue = self.foreign.lock().await;
            let mut released = 0;
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.notified() => break,
                    step = queue.recv() => match step {
                        Some(step) => released += release_queued(self, vec![step]).await,
                        None => break,
                    },
                }
            }
            // The store is closed now. Anything still queued was released by the
            // worker's drain or returns when its lease expires.
            queue.close();
            while queue.try_recv().is_ok() {}
            released
        };
        let stop = async {
            let report = self.engine.stop(grace).await;
            stopped.notify_one();
            report
        };
        let (released, mut report) = tokio::join!(release_loop, stop);
        report.released += released;
        self.pending.clear();
        self.state.store(CLOSED, Ordering::Release);
        Ok(report)
    }

    /// Creates a task (a duplicate idempotency key returns the existing one). Fails
    /// with [`BridgeError::Overloaded`] (and how long to wait) when the engine pushes back.
    pub async fn create_task(&self, request: TaskRequest) -> Result<TaskView, BridgeError> {
        self.check_usable()?;
        let key = request.template_key();
        let template = match resolve_template(&self.engine.templates().registry(), self.engine.store(), &key).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(BridgeError::TemplateNotFound(format!(
                    "unknown template `{key}`: load it with the `templates` option or register it with \
                     `tasker orchestrator --templates DIR`"
                )))
            }
            Err(TemplateLookupError::BadKey(e)) => return Err(BridgeError::InvalidInput(e.to_string())),
            Err(TemplateLookupError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(BridgeError::Internal(e.to_string())),
        };
        let mut submission = TaskSubmission::new(TemplateRef::Loaded(template), request.context);
        submission.idempotency_key = request.idempotency_key;
        submission.correlation_id = request.correlation_id;
        // Backpressure: an overloaded engine refuses at once with a retry delay, which
        // the bindings raise as a retryable `Overloaded` error carrying `retry_after`.
        let created = self.engine.try_submit(submission).await?;
        self.get_task(created.task_uuid).await
    }

    /// A task with its steps.
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<TaskView, BridgeError> {
        self.check_usable()?;
        self.engine
            .store()
            .task_get(task_uuid)
            .await?
            .ok_or_else(|| BridgeError::TaskNotFound(task_uuid.to_string()))
    }

    /// Waits until the task is complete, error, cancelled, resolved manually or
    /// blocked_by_failures.
    pub async fn wait_for_task(&self, task_uuid: Uuid, timeout: Duration) -> Result<TaskView, BridgeError> {
        self.check_usable()?;
        Ok(self.engine.wait_for_task(task_uuid, timeout).await?)
    }

    // ---- The JSON forms bindings call. ----

    /// [`Bridge::poll_step_events`], answering a JSON array of step events.
    pub async fn poll_step_events_json(&self, max_events: u32, timeout_ms: u64) -> Result<String, BridgeError> {
        let events = self
            .poll_step_events(max_events as usize, Duration::from_millis(timeout_ms))
            .await?;
        to_json(&events)
    }

    /// [`Bridge::complete_step_events`] from a JSON array of results.
    pub async fn complete_step_events_json(&self, results_json: &str) -> Result<String, BridgeError> {
        let results: Vec<Value> = serde_json::from_str(results_json)
            .map_err(|e| BridgeError::InvalidInput(format!("results must be a JSON array of step results: {e}")))?;
        to_json(&self.complete_step_events(results).await?)
    }

    /// [`Bridge::extend_lease`] by event id text.
    pub async fn extend_lease_json(&self, event_id: &str) -> Result<i64, BridgeError> {
        self.extend_lease(parse_event_id(event_id)?).await
    }

    /// [`Bridge::release_step_event`] by event id text.
    pub async fn release_step_event_json(&self, event_id: &str) -> Result<bool, BridgeError> {
        self.release_step_event(parse_event_id(event_id)?).await
    }

    /// [`Bridge::checkpoint_step`] with JSON cursor and data.
    pub async fn checkpoint_step_json(
        &self,
        event_id: &str,
        cursor_json: &str,
        data_json: &str,
    ) -> Result<(), BridgeError> {
        let cursor = parse_json("cursor", cursor_json)?;
        let data = parse_json("data", data_json)?;
        self.checkpoint_step(parse_event_id(event_id)?, cursor, data).await
    }

    /// [`Bridge::publish_domain_event`] with a JSON payload; answers the event as JSON.
    pub async fn publish_domain_event_json(
        &self,
        name: &str,
        payload_json: &str,
        mode: &str,
        event_id: Option<&str>,
    ) -> Result<String, BridgeError> {
        let payload = parse_json("payload", payload_json)?;
        let mode: DomainEventMode = mode.parse().map_err(BridgeError::InvalidInput)?;
        let event_id = event_id.map(parse_event_id).transpose()?;
        to_json(&self.publish_domain_event(name, payload, mode, event_id).await?)
    }

    /// [`Bridge::worker_status`] as JSON.
    pub fn worker_status_json(&self) -> Result<String, BridgeError> {
        to_json(&self.worker_status())
    }

    /// [`Bridge::shutdown`], answering `{"drained": n, "released": n}`.
    pub async fn shutdown_json(&self, grace_ms: u64) -> Result<String, BridgeError> {
        let report = self.shutdown(Duration::from_millis(grace_ms)).await?;
        to_json(&json!({"drained": report.drained, "released": report.released}))
    }

    /// [`Bridge::create_task`] from a task request JSON; answers the task view.
    pub async fn create_task_json(&self, request_json: &str) -> Result<String, BridgeError> {
        let request: TaskRequest =
            serde_json::from_str(request_json).map_err(|e| BridgeError::InvalidInput(format!("task request: {e}")))?;
        to_json(&self.create_task(request).await?)
    }

    /// [`Bridge::get_task`] by uuid text; answers the task view.
    pub async fn get_task_json(&self, task_uuid: &str) -> Result<String, BridgeError> {
        to_json(&self.get_task(parse_uuid("task_uuid", task_uuid)?).await?)
    }

    /// [`Bridge::wait_for_task`] by uuid text; answers the task view.
    pub async fn wait_for_task_json(&self, task_uuid: &str, timeout_ms: u64) -> Result<String, BridgeError> {
        let uuid = parse_uuid("task_uuid", task_uuid)?;
        to_json(&self.wait_for_task(uuid, Duration::from_millis(timeout_ms)).await?)
    }
}

/// Releases steps that were queued for the host but never handed out.
async fn release_queued(bridge: &Bridge, queued: Vec<ForeignStep>) -> usize {
    let events: Vec<PendingEvent> = queued
        .into_iter()
        .map(|step| PendingEvent {
            deadline_ms: step.dispatch.step.deadline_at,
            step: step.dispatch.step,
            permit: step.dispatch.permit,
            completion: step.completion,
            slot_freed: step.slot_freed,
            handed_out: Instant::now(),
            published: Vec::new(),
        })
        .collect();
    match bridge.release(events).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "releasing queued steps failed; their leases return them");
            0
        }
    }
}

/// Sends an event's result down the worker's completion channel (which waits
/// when the channel is full: backpressure, never a dropped result).
async fn send_result(event: PendingEvent, mut result: StepResult, execution_ms: u64, worker_id: &str) {
    let PendingEvent {
        step,
        permit,
        completion,
        published,
        ..
    } = event;
    result.published.extend(published);
    let message = completion_message(step, permit, result, execution_ms, worker_id);
    if completion.send(message).await.is_err() {
        tracing::warn!("the worker stopped before a result could be written; the step's lease returns it");
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, BridgeError> {
    serde_json::to_string(value).map_err(|e| BridgeError::Internal(format!("serialising an answer: {e}")))
}

fn parse_json(what: &str, text: &str) -> Result<Value, BridgeError> {
    serde_json::from_str(text).map_err(|e| BridgeError::InvalidInput(format!("{what} is not valid JSON: {e}")))
}

fn parse_uuid(what: &str, text: &str) -> Result<Uuid, BridgeError> {
    Uuid::parse_str(text).map_err(|_| BridgeError::InvalidInput(format!("{what} `{text}` is not a UUID")))
}

fn parse_event_id(text: &str) -> Result<Uuid, BridgeError> {
    parse_uuid("event_id", text)
}
