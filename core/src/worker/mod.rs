//! The worker: a dual-event system that claims steps and runs their handlers.
//!
//! ```text
//!   StepExecutor ──dispatch channel (bounded)──▶ handler dispatch ──▶ handler tasks
//!        ▲  claims ≤ free slots                                           │
//!        │                                                                 ▼
//!   WakeHub ◀── FFICompletion ◀──────────completion channel (bounded)──────┘
//!                 │ batches results into one transaction (ResultProcessor)
//!                 ├─▶ DomainEvent (declared events), WorkerStatus (counters)
//!                 └─▶ wakes namespaces with new steps; frees slots
//! ```
//! The five actors: [`step_executor`] (StepExecutor), [`ffi_completion`]
//! (FFICompletion), [`template_cache`] (TemplateCache), [`domain_event`]
//! (DomainEvent) and [`worker_status`] (WorkerStatus). [`handler`] is the Rust
//! handler API, [`checkpoint`] saves batch workers' progress; [`lease_keeper`]
//! extends leases while handlers run.

pub mod channels;
pub mod checkpoint;
pub mod domain_event;
pub mod ffi_completion;
pub mod handler;
pub mod handler_dispatch;
pub mod lease_keeper;
pub mod step_executor;
pub mod template_cache;
pub mod worker_status;

pub use checkpoint::CheckpointError;
pub use handler::{HandlerRegistry, StepContext, StepError, StepHandler, StepResult};
pub use template_cache::TemplateCache;
pub use worker_status::WorkerStatusSnapshot;

use crate::clock::SharedClock;
use crate::events::domain::DomainEventBus;
use crate::events::{EngineEvents, WakeHub};
use crate::orchestration::step_enqueuer::WakeScheduler;
use crate::orchestration::ResultProcessor;
use crate::shutdown::Shutdown;
use crate::store::{ReleaseReason, SharedStore, StepReleaseManyParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Id recorded on claims and audit rows.
    pub worker_id: String,
    /// Namespaces whose steps it claims.
    pub namespaces: Vec<String>,
    /// Handlers that may run at once (= most claims held).
    pub concurrency: usize,
    /// Most steps per claim statement.
    pub claim_batch: u32,
    /// Dispatch channel capacity.
    pub dispatch_capacity: usize,
    /// Completion channel capacity.
    pub completion_capacity: usize,
    /// Most results per write transaction.
    pub completion_batch: usize,
    /// Fallback polling interval.
    pub poll_interval: Duration,
    /// Lease length of a claim.
    pub lease_ms: i64,
}

/// What a worker needs from the engine around it.
#[derive(Debug, Clone)]
pub struct WorkerDeps {
    /// The store.
    pub store: SharedStore,
    /// Time source.
    pub clock: SharedClock,
    /// Handlers by callable.
    pub handlers: Arc<HandlerRegistry>,
    /// Applies results.
    pub results: Arc<ResultProcessor>,
    /// Wake-ups.
    pub wake: WakeHub,
    /// Retry wake-ups (from the StepEnqueuer).
    pub scheduler: Option<WakeScheduler>,
    /// Progress events.
    pub events: EngineEvents,
    /// Domain event bus.
    pub domain_bus: DomainEventBus,
    /// Templates.
    pub templates: TemplateCache,
    /// Where steps for host-language handlers go (a bridge's queue), if any.
    pub foreign: Option<mpsc::Sender<channels::ForeignStep>>,
    /// The engine's metrics (claims, channel fill).
    pub metrics: crate::metrics::SharedMetrics,
    /// The engine's circuit breakers (`ffi_completion` pauses claiming while open).
    pub breakers: Arc<crate::breaker::Breakers>,
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Steps whose handlers were running when claiming stopped and that finished
    /// (their results written) within the grace period.
    pub drained: usize,
    /// Steps whose handlers did not finish within the grace period and were
    /// handed back to the queue.
    pub released: usize,
}

/// A running worker.
#[derive(Debug)]
pub struct Worker {
    status: Arc<worker_status::WorkerStatus>,
    stop_claiming: Shutdown,
    stop_leases: Shutdown,
    executor: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    completion: JoinHandle<()>,
    lease_keeper: JoinHandle<()>,
    store: SharedStore,
    clock: SharedClock,
    worker_id: String,
}

impl Worker {
    /// Starts the worker's actors on the current tokio runtime.
    pub fn spawn(config: WorkerConfig, deps: WorkerDeps) -> Self {
        let concurrency = config.concurrency.max(1);
        let status = Arc::new(worker_status::WorkerStatus::new(config.worker_id.clone(), concurrency));
        let slots = Arc::new(Semaphore::new(concurrency));
        let slot_freed = Arc::new(Notify::new());
        let (dispatch_tx, dispatch_rx) = mpsc::channel(config.dispatch_capacity.max(1));
        let (completion_tx, completion_rx) = mpsc::channel(config.completion_capacity.max(1));
        let stop_claiming = Shutdown::new();
        let stop_leases = Shutdown::new();
        deps.metrics
            .watch_channel("dispatch", crate::metrics::channel_probe(&dispatch_tx));
        deps.metrics
            .watch_channel("completion", crate::metrics::channel_probe(&completion_tx));

        let executor = step_executor::StepExecutor {
            store: deps.store.clone(),
            clock: deps.clock.clone(),
            namespaces: config.namespaces.clone(),
            slots: slots.clone(),
            slot_freed: slot_freed.clone(),
            claim_batch: config.claim_batch.max(1),
            lease_ms: config.lease_ms,
            poll_interval: config.poll_interval,
            worker_id: config.worker_id.clone(),
            wake: deps.wake.clone(),
            events: deps.events.clone(),
            status: status.clone(),
            concurrency,
            metrics: deps.metrics.clone(),
            breakers: deps.breakers.clone(),
        };
        let dispatch = handler_dispatch::HandlerDispatch {
            handlers: deps.handlers.clone(),
            worker_id: config.worker_id.clone(),
            foreign: deps.foreign.clone(),
            slot_freed: slot_freed.clone(),
            store: deps.store.clone(),
            clock: deps.clock.clone(),
            lease_ms: config.lease_ms,
        };
        let completion = ffi_completion::FfiCompletion {
            results: deps.results.clone(),
            clock: deps.clock.clone(),
            batch_size: config.completion_batch.max(1),
            wake: deps.wake.clone(),
            scheduler: deps.scheduler.clone(),
            events: deps.events.clone(),
            domain: domain_event::DomainEventPublisher::new(
                deps.domain_bus.clone(),
                deps.templates.clone(),
                deps.metrics.clone(),
            ),
            status: status.clone(),
            slot_freed,
            dispatch: dispatch_tx.downgrade(),
            namespaces: config.namespaces.clone(),
            lease_ms: config.lease_ms,
            worker_id: config.worker_id.clone(),
            breakers: deps.breakers.clone(),
        };
        Self {
            executor: tokio::spawn(executor.run(dispatch_tx, stop_claiming.clone())),
            dispatcher: tokio::spawn(dispatch.run(dispatch_rx, completion_tx)),
            completion: tokio::spawn(completion.run(completion_rx)),
            lease_keeper: tokio::spawn(lease_keeper::run(
                deps.store.clone(),
                deps.clock.clone(),
                status.clone(),
                config.lease_ms,
                stop_leases.clone(),
            )),
            status,
            stop_claiming,
            stop_leases,
            store: deps.store,
            clock: deps.clock,
            worker_id: config.worker_id,
        }
    }

    /// Counters and in-flight claims.
    pub fn status(&self) -> WorkerStatusSnapshot {
        self.status.snapshot()
    }

    /// The live status (a bridge forgets the claims it releases).
    pub fn status_handle(&self) -> Arc<worker_status::WorkerStatus> {
        self.status.clone()
    }

    /// Stops claiming, lets running handlers finish for up to `grace` and writes
    /// their results, then hands any step still running back to the queue.
    pub async fn shutdown(self, grace: Duration) -> DrainReport {
        self.stop_claiming.trigger();
        let _ = self.executor.await;
        let running = self.status.held_claims().len();
        // The executor dropped the dispatch sender: the dispatcher ends once the
        // channel is empty, and the completion loop once every handler task is done.
        let mut completion = self.completion;
        let finished = tokio::time::timeout(grace, &mut completion).await.is_ok();
        let mut report = DrainReport::default();
        if !finished {
            let claims: Vec<_> = self
                .status
                .held_claims()
                .into_iter()
                .map(|(s, c)| (s, c.claim_seq))
                .collect();
            if !claims.is_empty() {
                let params = StepReleaseManyParams {
                    claims,
                    reason: ReleaseReason::Released,
                    now: self.clock.now_ms(),
                    processor: self.worker_id.clone(),
                };
                match self.store.step_release_many(params).await {
                    Ok(released) => report.released = released.len(),
                    Err(e) => {
                        tracing::warn!(error = %e, "releasing unfinished steps failed; their leases will return them")
                    }
                }
            }
            self.dispatcher.abort();
            completion.abort();
        }
        report.drained = running.saturating_sub(report.released);
        self.stop_leases.trigger();
        let _ = self.lease_keeper.await;
        report
    }
}
