//! StepEnqueuer: the timed work of orchestration.
//!
//! - Retry wake-ups: when a result schedules a retry, the enqueuer is told when the
//!   step becomes claimable and wakes that namespace's workers then (so a retry
//!   runs on time, not on the next poll).
//! - Lease sweep, on start and every `sweep_interval`: a claim whose lease ran out
//!   belongs to a worker that is gone or stuck. Its step goes back to `enqueued`
//!   without burning an attempt (event `lease_expired`); a step whose attempt
//!   deadline has also passed fails as a `timeout` instead, through the
//!   ResultProcessor (so retries and task finalization follow the usual rules),
//!   firing the step's declared failure events as a failed attempt would.

use super::result_processor::{HandlerOutcome, ResultProcessor};
use crate::clock::{EpochMillis, SharedClock};
use crate::events::WakeHub;
use crate::metrics::{EngineMetrics, SharedMetrics};
use crate::shutdown::Shutdown;
use crate::store::{ReleaseReason, SharedStore, StepReleaseManyParams, StoreError};
use crate::worker::domain_event::{DomainEventPublisher, FinishedAttempt};
use crate::worker::handler::StepResult;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most expired claims handled per sweep round.
pub const SWEEP_BATCH: u32 = 500;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Steps returned to the queue.
    pub released: usize,
    /// Steps failed as timeouts.
    pub timed_out: usize,
}

/// The timed-work actor.
#[derive(Debug, Clone)]
pub struct StepEnqueuer {
    store: SharedStore,
    clock: SharedClock,
    results: Arc<ResultProcessor>,
    wake: WakeHub,
    processor: String,
    metrics: SharedMetrics,
    domain: Option<DomainEventPublisher>,
}

/// Asks the enqueuer to wake a namespace at a time.
#[derive(Debug, Clone)]
pub struct WakeScheduler {
    tx: mpsc::Sender<(EpochMillis, String)>,
}

impl WakeScheduler {
    /// Wakes `namespace` at `at` (best effort: a full queue drops the request, and
    /// the workers' polling interval covers it).
    pub fn wake_at(&self, namespace: &str, at: EpochMillis) {
        let _ = self.tx.try_send((at, namespace.to_string()));
    }

    /// A probe of the wake-up queue's fill for the metrics.
    pub fn channel_probe(&self) -> crate::metrics::ChannelProbe {
        crate::metrics::channel_probe(&self.tx)
    }
}

impl StepEnqueuer {
    /// A StepEnqueuer writing audit rows as `processor`.
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        results: Arc<ResultProcessor>,
        wake: WakeHub,
        processor: String,
    ) -> Self {
        Self {
            store,
            clock,
            results,
            wake,
            processor,
            metrics: Arc::new(EngineMetrics::new()),
            domain: None,
        }
    }

    /// Fires the declared failure events of steps the sweep fails as timeouts.
    pub fn with_domain_events(mut self, domain: DomainEventPublisher) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Counts lease expiries in `metrics` (the engine's).
    pub fn with_metrics(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs one lease sweep.
    pub async fn sweep_expired_leases(&self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        loop {
            let now = self.clock.now_ms();
            let expired = self.store.step_lease_expired_list(now, SWEEP_BATCH).await?;
            if expired.is_empty() {
                return Ok(report);
            }
            let full_batch = expired.len() as u32 == SWEEP_BATCH;
            let (late, lost): (Vec<_>, Vec<_>) = expired.into_iter().partition(|c| c.past_deadline);
            if !lost.is_empty() {
                let claims = lost.iter().map(|c| (c.step_uuid, c.claim_seq)).collect();
                let released = self
                    .store
                    .step_release_many(StepReleaseManyParams {
                        claims,
                        reason: ReleaseReason::LeaseExpired,
                        now,
                        processor: self.processor.clone(),
                    })
                    .await?;
                report.released += released.len();
                for c in &lost {
                    self.metrics.lease_expiries.with_label_values(&[&c.namespace]).inc();
                    tracing::warn!(step_uuid = %c.step_uuid, task_uuid = %c.task_uuid, "lease expired; step returned to the queue");
                    self.wake.wake(&c.namespace);
                }
            }
            if !late.is_empty() {
                for c in &late {
                    self.metrics.lease_expiries.with_label_values(&[&c.namespace]).inc();
                }
                let mut outcomes: Vec<HandlerOutcome> = Vec::with_capacity(late.len());
                let mut fast = HashMap::new();
                for c in &late {
                    let result = StepResult::failure(
                        "the attempt passed its deadline without a result (worker lost or stuck)",
                        "timeout",
                    );
                    let mut events = vec![];
                    if let Some(domain) = &self.domain {
                        domain
                            .ensure_template(&c.task_namespace, &c.task_name, &c.task_version)
                            .await;
                        let prepared = domain.prepare(&FinishedAttempt {
                            task_uuid: c.task_uuid,
                            step_uuid: c.step_uuid,
                            step_name: &c.name,
                            template_step_name: &c.template_step_name,
                            namespace: &c.task_namespace,
                            task_name: &c.task_name,
                            task_version: &c.task_version,
                            correlation_id: c.correlation_id,
                            success: false,
                            payload: &result.result,
                            published: &[],
                            now,
                        });
                        events = prepared.durable;
                        fast.insert(c.step_uuid, prepared.fast);
                    }
                    outcomes.push(HandlerOutcome {
                        step_uuid: c.step_uuid,
                        task_uuid: c.task_uuid,
                        claim_seq: c.claim_seq,
                        namespace: c.namespace.clone(),
                        task_namespace: c.task_namespace.clone(),
                        attempt: c.attempt,
                        retry: c.retry.clone(),
                        step_type: c.step_type,
                        result,
                        execution_ms: 0,
                        handler: String::new(),
                        worker_id: self.processor.clone(),
                        events,
                    });
                }
                let batch = self.results.process(&outcomes, None).await?;
                report.timed_out += batch.report.applied.len();
                if let Some(domain) = &self.domain {
                    for a in &batch.report.applied {
                        let written = outcomes.iter().find(|o| o.step_uuid == a.step_uuid);
                        domain.after_write(
                            fast.remove(&a.step_uuid).unwrap_or_default(),
                            written.map(|o| o.events.as_slice()).unwrap_or_default(),
                            a.state,
                        );
                    }
                }
                for s in &batch.report.enqueued {
                    self.wake.wake(&s.namespace);
                }
            }
            if !full_batch {
                return Ok(report);
            }
        }
    }

    /// Starts the actor: sweeps leases on start and every `sweep_interval`, and
    /// serves retry wake-ups. Stops on shutdown.
    pub fn spawn(self, sweep_interval: Duration, wake_capacity: usize, shutdown: Shutdown) -> WakeScheduler {
        let (tx, mut rx) = mpsc::channel::<(EpochMillis, String)>(wake_capacity.max(1));
        tokio::spawn(async move {
            let mut timers: BinaryHeap<Reverse<(EpochMillis, String)>> = BinaryHeap::new();
            let mut sweep = tokio::time::interval(sweep_interval);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next_wake = timers
                    .peek()
                    .map(|Reverse((at, _))| (*at - self.clock.now_ms()).max(0) as u64);
                let sleep = tokio::time::sleep(Duration::from_millis(next_wake.unwrap_or(3_600_000)));
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = sweep.tick() => {
                        if let Err(e) = self.sweep_expired_leases().await {
                            tracing::warn!(error = %e, "lease sweep failed; will retry");
                        }
                    }
                    msg = rx.recv() => match msg {
                        Some(entry) => timers.push(Reverse(entry)),
                        None => break,
                    },
                    _ = sleep, if next_wake.is_some() => {
                        let now = self.clock.now_ms();
                        while let Some(Reverse((at, ns))) = timers.peek() {
                            if *at > now { break; }
                            self.wake.wake(ns);
                            timers.pop();
                        }
                    }
                }
            }
        });
        WakeScheduler { tx }
    }
}
