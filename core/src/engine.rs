//! The embedded engine: orchestration (TaskRequest, StepEnqueuer, ResultProcessor,
//! TaskFinalizer) and a worker in one process, over one store. `tasker run`, the
//! benchmarks and the language bindings' embedded mode all start one of these.
//!
//! No globals: every engine owns its actors, and tests start many in one process.

use crate::breaker::Breakers;
use crate::clock::{self, SharedClock};
use crate::config::EngineConfig;
use crate::events::domain::DomainEventBus;
use crate::events::{EngineEvent, EngineEvents, WakeHub};
use crate::metrics::{EngineMetrics, SharedMetrics};
use crate::orchestration::admission::Admission;
use crate::orchestration::staleness::{DlqMetrics, StalenessSweep};
use crate::orchestration::step_enqueuer::WakeScheduler;
use crate::orchestration::{
    CreateTaskError, ResultProcessor, StepEnqueuer, TaskFinalizer, TaskRequest, TaskRequestHandle, TaskSubmission,
};
use crate::shutdown::Shutdown;
use crate::state::TaskState;
use crate::store::{self, SharedStore, StoreError, TaskCreated, TaskView};
use crate::template::TemplateRegistry;
use crate::worker::channels::ForeignStep;
use crate::worker::worker_status::WorkerStatus;
use crate::worker::{
    DrainReport, HandlerRegistry, TemplateCache, Worker, WorkerConfig, WorkerDeps, WorkerStatusSnapshot,
};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// An engine could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task did not settle in time.
    #[error("task {task_uuid} did not finish within {timeout_ms} ms (last state: {state})")]
    WaitTimedOut {
        /// The task.
        task_uuid: Uuid,
        /// How long we waited.
        timeout_ms: u64,
        /// Its state when we gave up.
        state: TaskState,
    },
    /// No such task.
    #[error("no task {0}")]
    TaskNotFound(Uuid),
}

/// A running engine.
#[derive(Debug)]
pub struct Engine {
    store: SharedStore,
    clock: SharedClock,
    requests: TaskRequestHandle,
    finalizer: TaskFinalizer,
    enqueuer: StepEnqueuer,
    staleness: StalenessSweep,
    /// Taken by the first stop.
    worker: tokio::sync::Mutex<Option<Worker>>,
    worker_status: Arc<WorkerStatus>,
    events: EngineEvents,
    domain: DomainEventBus,
    templates: TemplateCache,
    shutdown: Shutdown,
    grace: Duration,
    metrics: SharedMetrics,
    breakers: Arc<Breakers>,
    admission: Arc<Admission>,
    config: EngineConfig,
}

impl Engine {
    /// Opens the configured store and starts an engine whose worker serves `namespaces`.
    pub async fn start(
        config: EngineConfig,
        handlers: HandlerRegistry,
        templates: TemplateRegistry,
        namespaces: Vec<String>,
    ) -> Result<Self, EngineError> {
        let store = store::open_with(&config.database_url, config.store_options()).await?;
        Ok(Self::start_with(
            store,
            clock::system(),
            config,
            handlers,
            templates,
            namespaces,
        ))
    }

    /// Starts an engine over an open store and a given clock (tests use a manual one).
    pub fn start_with(
        store: SharedStore,
        clock: SharedClock,
        config: EngineConfig,
        handlers: HandlerRegistry,
        templates: TemplateRegistry,
        namespaces: Vec<String>,
    ) -> Self {
        Self::start_bridged(store, clock, config, handlers, templates, namespaces, None)
    }

    /// Like [`Engine::start_with`], and steps whose callable has no Rust handler go
    /// to `foreign` (a language binding's [`Bridge`](crate::bridge::Bridge)).
    pub fn start_bridged(
        store: SharedStore,
        clock: SharedClock,
        config: EngineConfig,
        handlers: HandlerRegistry,
        templates: TemplateRegistry,
        namespaces: Vec<String>,
        foreign: Option<tokio::sync::mpsc::Sender<ForeignStep>>,
    ) -> Self {
        let processor = format!("engine-{}", Uuid::now_v7());
        let shutdown = Shutdown::new();
        let events = EngineEvents::default();
        let domain = DomainEventBus::default();
        let wake = WakeHub::default();
        let templates = TemplateCache::new(templates).with_store(store.clone());
        let notifications = store.ready_notifications();
        let listening = notifications.is_some();
        if let Some(mut ready) = notifications {
            // Other processes' commits wake this process's workers at once.
            let (wake, shutdown) = (wake.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        msg = ready.recv() => match msg {
                            Ok(namespace) => wake.wake(&namespace),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        },
                    }
                }
            });
        }
        let metrics: SharedMetrics = Arc::new(EngineMetrics::new());
        let observer = metrics.clone();
        let breakers = Arc::new(Breakers::new(config.breakers, clock.clone(), move |name, state| {
            observer.breaker_changed(name, state)
        }));
        for b in breakers.all() {
            metrics
                .breaker_state
                .with_label_values(&[b.name()])
                .set(b.state().gauge_value());
        }
        let results = Arc::new(
            ResultProcessor::new(store.clone(), clock.clone(), processor.clone()).with_metrics(metrics.clone()),
        );
        let enqueuer = StepEnqueuer::new(
            store.clone(),
            clock.clone(),
            results.clone(),
            wake.clone(),
            processor.clone(),
        )
        .with_metrics(metrics.clone())
        .with_domain_events(crate::worker::domain_event::DomainEventPublisher::new(
            domain.clone(),
            templates.clone(),
            metrics.clone(),
        ));
        let scheduler: WakeScheduler = enqueuer.clone().spawn(
            Duration::from_millis(config.lease_sweep_interval_ms.max(1)),
            config.wake_channel_capacity,
            shutdown.clone(),
        );
        let staleness = StalenessSweep::new(
            store.clone(),
            clock.clone(),
            wake.clone(),
            processor.clone(),
            config.staleness.clone(),
            DlqMetrics::register(metrics.registry()).expect("the DLQ metrics are registered once per engine"),
        );
        staleness.clone().spawn(shutdown.clone());
        let request = TaskRequest::new(store.clone(), clock.clone(), templates.registry(), processor.clone());
        metrics.watch_channel("wake", scheduler.channel_probe());
        let (created_wake, created_events, created_metrics) = (wake.clone(), events.clone(), metrics.clone());
        let requests = request.spawn(config.task_request_channel_capacity, move |created: &TaskCreated| {
            if created.created {
                created_metrics
                    .tasks_created
                    .with_label_values(&[&created.namespace])
                    .inc();
                for namespace in &created.enqueued_namespaces {
                    created_wake.wake(namespace);
                }
                created_events.publish(EngineEvent::TaskCreated {
                    task_uuid: created.task_uuid,
                    state: created.state,
                });
            } else {
                created_metrics
                    .tasks_deduplicated
                    .with_label_values(&[&created.namespace])
                    .inc();
            }
        });
        metrics.watch_channel("task_request", requests.channel_probe());
        if let Some(foreign) = &foreign {
            metrics.watch_channel("foreign", crate::metrics::channel_probe(foreign));
        }
        let admission = Arc::new(Admission::new(
            config.backpressure.clone(),
            requests.clone(),
            breakers.clone(),
            metrics.clone(),
        ));
        admission.clone().spawn_sampler(store.clone(), shutdown.clone());
        let worker = Worker::spawn(
            WorkerConfig {
                worker_id: processor.clone(),
                namespaces,
                concurrency: config.concurrency,
                claim_batch: config.claim_batch,
                dispatch_capacity: config.dispatch_channel_capacity,
                completion_capacity: config.completion_channel_capacity,
                completion_batch: config.completion_batch,
                poll_interval: config.worker_poll_interval(listening),
                lease_ms: config.lease_ms,
            },
            WorkerDeps {
                store: store.clone(),
                clock: clock.clone(),
                handlers: Arc::new(handlers),
                results,
                wake,
                scheduler: Some(scheduler),
                events: events.clone(),
                domain_bus: domain.clone(),
                templates: templates.clone(),
                foreign,
                metrics: metrics.clone(),
                breakers: breakers.clone(),
            },
        );
        let worker_status = worker.status_handle();
        Self {
            finalizer: TaskFinalizer::new(store.clone(), clock.clone(), processor),
            store,
            clock,
            requests,
            enqueuer,
            staleness,
            worker: tokio::sync::Mutex::new(Some(worker)),
            worker_status,
            events,
            domain,
            templates,
            shutdown,
            grace: Duration::from_millis(config.shutdown_grace_ms),
            metrics,
            breakers,
            admission,
            config,
        }
    }

    /// Submits a task, waiting for room in TaskRequest's queue.
    pub async fn submit(&self, submission: TaskSubmission) -> Result<TaskCreated, CreateTaskError> {
        self.requests.submit(submission).await
    }

    /// Submits a task unless the engine is overloaded (see [`Admission`]): a full
    /// queue, a namespace over its ready-step limit or an open database breaker is
    /// refused at once with [`CreateTaskError::Overloaded`] and a retry delay. The
    /// HTTP API and the bindings' clients create tasks this way.
    pub async fn try_submit(&self, submission: TaskSubmission) -> Result<TaskCreated, CreateTaskError> {
        self.admission.try_submit(submission).await
    }

    /// The staleness sweep (the dead-letter queue's timed work).
    pub fn staleness(&self) -> &StalenessSweep {
        &self.staleness
    }

    /// The engine's metrics (rendered by `GET /metrics`).
    pub fn metrics(&self) -> &SharedMetrics {
        &self.metrics
    }

    /// The engine's circuit breakers.
    pub fn breakers(&self) -> &Arc<Breakers> {
        &self.breakers
    }

    /// Task-creation backpressure.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// The configuration the engine started with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Waits until the task ends (complete, error, cancelled, resolved manually, or
    /// held in blocked_by_failures) and returns it.
    pub async fn wait_for_task(&self, task_uuid: Uuid, timeout: Duration) -> Result<TaskView, EngineError> {
        let mut events = self.events.subscribe();
        // Other processes' tasks: LISTEN/NOTIFY where the backend has it; otherwise
        // (SQLite shared by several processes) the one-second re-read below.
        let mut settled = self.store.task_settled_notifications();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self
                .store
                .task_get(task_uuid)
                .await?
                .ok_or(EngineError::TaskNotFound(task_uuid))?;
            if task.state.is_terminal() || task.state == TaskState::BlockedByFailures {
                return Ok(task);
            }
            // Wait until this task ends, or re-check every second (another process may finish it).
            let changed = async {
                loop {
                    match events.recv().await {
                        Ok(EngineEvent::TaskChanged { task_uuid: t, to, .. })
                            if t == task_uuid && (to.is_terminal() || to == TaskState::BlockedByFailures) =>
                        {
                            return
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            };
            let settled_elsewhere = async {
                let Some(rx) = settled.as_mut() else {
                    return std::future::pending::<()>().await;
                };
                loop {
                    match rx.recv().await {
                        Ok(t) if t == task_uuid => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                _ = changed => {}
                _ = settled_elsewhere => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let state = self.store.task_get(task_uuid).await?.map(|t| t.state).unwrap_or(task.state);
                    return Err(EngineError::WaitTimedOut { task_uuid, timeout_ms: timeout.as_millis() as u64, state });
                }
            }
        }
    }

    /// Progress events.
    pub fn events(&self) -> &EngineEvents {
        &self.events
    }

    /// The domain event bus.
    pub fn domain_events(&self) -> &DomainEventBus {
        &self.domain
    }

    /// A publisher of domain events on this engine's bus, with its templates'
    /// declarations and schemas and its metrics.
    pub fn domain_event_publisher(&self) -> crate::worker::domain_event::DomainEventPublisher {
        crate::worker::domain_event::DomainEventPublisher::new(
            self.domain.clone(),
            self.templates.clone(),
            self.metrics.clone(),
        )
    }

    /// A durable event subscriber on this engine's store for consumer `consumer`.
    pub fn event_subscriber(&self, consumer: &str) -> crate::events::subscriber::EventSubscriber {
        crate::events::subscriber::EventSubscriber::new(self.store().clone(), self.clock.clone(), consumer)
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The templates.
    pub fn templates(&self) -> &TemplateCache {
        &self.templates
    }

    /// The task finalizer (re-evaluates tasks on demand).
    pub fn finalizer(&self) -> &TaskFinalizer {
        &self.finalizer
    }

    /// The step enqueuer (timed work on demand, e.g. a lease sweep).
    pub fn enqueuer(&self) -> &StepEnqueuer {
        &self.enqueuer
    }

    /// Worker counters.
    pub fn worker_status(&self) -> WorkerStatusSnapshot {
        self.worker_status.snapshot()
    }

    /// The worker's live status (a bridge forgets the claims it releases).
    pub fn worker_status_handle(&self) -> &Arc<WorkerStatus> {
        &self.worker_status
    }

    /// Stops claiming, drains running handlers (up to the configured grace), stops
    /// the actors and closes the store.
    pub async fn shutdown(self) -> DrainReport {
        let grace = self.grace;
        self.shutdown_with_grace(grace).await
    }

    /// Like [`Engine::shutdown`] with an explicit grace period; `Duration::ZERO`
    /// hands every running step back to the queue at once.
    pub async fn shutdown_with_grace(self, grace: Duration) -> DrainReport {
        self.stop(grace).await
    }

    /// Stops the engine through a shared reference (bindings hold the engine in an
    /// `Arc`). The first call drains and closes; later calls return an empty report.
    pub async fn stop(&self, grace: Duration) -> DrainReport {
        let Some(worker) = self.worker.lock().await.take() else {
            return DrainReport::default();
        };
        let report = worker.shutdown(grace).await;
        self.shutdown.trigger();
        self.store.close().await;
        report
    }
}
