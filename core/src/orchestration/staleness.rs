//! The staleness sweep: timed work that finds tasks and steps stuck longer than
//! their thresholds and records them in the dead-letter queue (DLQ), holding each
//! task for an operator (`--dead_letter--> blocked_by_failures`, a stuck step
//! `--dead_letter--> error`) in the same transaction (`Store::dlq_sweep`).
//!
//! Every engine process runs it (the embedded engine and `tasker orchestrator`)
//! every `staleness.interval_ms`. Several processes may sweep one database at once:
//! the write locks what it records (PostgreSQL `SKIP LOCKED`; SQLite's single
//! writer) and the open-entry unique index keeps one open entry per task, so a task
//! is dead-lettered once. Thresholds: [`StalenessConfig`], overridden per task by
//! the template's `lifecycle` minutes. Operators resolve entries through
//! `tasker dlq resolve` or `POST /v1/dlq/{id}/resolve`; the sweep itself closes an
//! open entry whose task finished meanwhile (resolution `task_finished`).

use crate::clock::SharedClock;
use crate::events::WakeHub;
use crate::shutdown::Shutdown;
use crate::store::{DlqResolveOutcome, DlqSweepParams, DlqSweepReport, SharedStore, StaleThresholds, StoreError};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Most sweep rounds per tick (each records up to `batch_size` tasks).
pub const MAX_ROUNDS: usize = 10;

/// When the staleness sweep runs and what counts as stuck. Every threshold is in
/// milliseconds; 0 turns its rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StalenessConfig {
    /// Run the sweep in this process.
    pub enabled: bool,
    /// Time between sweeps.
    pub interval_ms: u64,
    /// Most tasks recorded per round.
    pub batch_size: u32,
    /// A claimed step whose lease ended this long ago without being handed back.
    pub step_lease_grace_ms: u64,
    /// An enqueued step that no worker claimed for this long.
    pub step_enqueued_ms: u64,
    /// A task in `waiting_for_dependencies` with nothing running.
    pub waiting_for_dependencies_ms: u64,
    /// A task in `waiting_for_retry` with nothing running.
    pub waiting_for_retry_ms: u64,
    /// A task in `steps_in_process` without a state change.
    pub steps_in_process_ms: u64,
    /// A task held in `blocked_by_failures`.
    pub blocked_ms: u64,
    /// A task in `error` that no operator looked at.
    pub error_ms: u64,
    /// Age of a task that has not finished.
    pub max_lifetime_ms: u64,
}

impl Default for StalenessConfig {
    fn default() -> Self {
        const MINUTE: u64 = 60_000;
        Self {
            enabled: true,
            interval_ms: MINUTE,
            batch_size: 100,
            step_lease_grace_ms: 5 * MINUTE,
            step_enqueued_ms: 30 * MINUTE,
            waiting_for_dependencies_ms: 60 * MINUTE,
            waiting_for_retry_ms: 30 * MINUTE,
            steps_in_process_ms: 30 * MINUTE,
            blocked_ms: 60 * MINUTE,
            error_ms: 60 * MINUTE,
            max_lifetime_ms: 24 * 60 * MINUTE,
        }
    }
}

impl StalenessConfig {
    /// The thresholds as the store takes them (0 → rule off).
    pub fn thresholds(&self) -> StaleThresholds {
        let ms = |v: u64| (v > 0).then_some(v.min(i64::MAX as u64) as i64);
        StaleThresholds {
            step_lease_grace_ms: ms(self.step_lease_grace_ms),
            step_enqueued_ms: ms(self.step_enqueued_ms),
            waiting_for_dependencies_ms: ms(self.waiting_for_dependencies_ms),
            waiting_for_retry_ms: ms(self.waiting_for_retry_ms),
            steps_in_process_ms: ms(self.steps_in_process_ms),
            blocked_ms: ms(self.blocked_ms),
            error_ms: ms(self.error_ms),
            max_lifetime_ms: ms(self.max_lifetime_ms),
        }
    }
}

/// The sweep's metrics, registered in the engine's registry (`docs/metrics.md`).
#[derive(Debug, Clone)]
pub struct DlqMetrics {
    /// `tasker_dlq_entries_created_total{reason}`.
    pub entries_created: IntCounterVec,
    /// `tasker_stale_detections_total{reason}`: stuck tasks found (recorded or not).
    pub stale_detections: IntCounterVec,
    /// `tasker_dlq_open_entries`: open entries after the last sweep or resolution.
    pub open_entries: IntGauge,
    /// `tasker_staleness_sweeps_total{outcome}`: `ok` or `error`.
    pub sweeps: IntCounterVec,
}

impl DlqMetrics {
    /// Registers the metrics in `registry` (once per registry).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let open_entries = IntGauge::new(
            "tasker_dlq_open_entries",
            "Dead-letter entries waiting for an operator.",
        )?;
        registry.register(Box::new(open_entries.clone()))?;
        Ok(Self {
            entries_created: counter(
                "tasker_dlq_entries_created_total",
                "Dead-letter entries recorded by the staleness sweep, by reason.",
                "reason",
            )?,
            stale_detections: counter(
                "tasker_stale_detections_total",
                "Stuck tasks the staleness sweep found, by reason (recorded or left to a concurrent sweep).",
                "reason",
            )?,
            open_entries,
            sweeps: counter(
                "tasker_staleness_sweeps_total",
                "Staleness sweeps run, by outcome (ok, error).",
                "outcome",
            )?,
        })
    }

    /// Metrics in a private registry (tests, tools).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry accepts the DLQ metrics")
    }
}

/// The staleness sweep actor.
#[derive(Debug, Clone)]
pub struct StalenessSweep {
    store: SharedStore,
    clock: SharedClock,
    wake: WakeHub,
    processor: String,
    config: StalenessConfig,
    metrics: DlqMetrics,
}

impl StalenessSweep {
    /// A sweep writing audit rows as `processor`.
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        wake: WakeHub,
        processor: String,
        config: StalenessConfig,
        metrics: DlqMetrics,
    ) -> Self {
        Self {
            store,
            clock,
            wake,
            processor,
            config,
            metrics,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &StalenessConfig {
        &self.config
    }

    /// Runs one sweep: rounds of up to `batch_size` tasks until a round records
    /// fewer (at most [`MAX_ROUNDS`]); returns what all rounds found and recorded.
    pub async fn sweep_once(&self) -> Result<DlqSweepReport, StoreError> {
        let mut total = DlqSweepReport::default();
        for _ in 0..MAX_ROUNDS {
            let report = self
                .store
                .dlq_sweep(DlqSweepParams {
                    thresholds: self.config.thresholds(),
                    limit: self.config.batch_size.max(1),
                    now: self.clock.now_ms(),
                    processor: self.processor.clone(),
                })
                .await?;
            for reason in &report.detected {
                self.metrics
                    .stale_detections
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
            for e in &report.recorded {
                self.metrics
                    .entries_created
                    .with_label_values(&[e.reason.as_str()])
                    .inc();
                tracing::warn!(
                    entry_id = %e.entry_id, task_uuid = %e.task_uuid, step_uuid = ?e.step_uuid,
                    reason = %e.reason, stale_state = %e.stale_state, stale_for_ms = e.stale_for_ms,
                    "stuck task recorded in the dead-letter queue"
                );
            }
            if report.closed > 0 {
                tracing::info!(closed = report.closed, "dead-letter entries of finished tasks closed");
            }
            let full = report.recorded.len() as u32 >= self.config.batch_size.max(1);
            total.closed += report.closed;
            total.detected.extend(report.detected);
            total.recorded.extend(report.recorded);
            if !full {
                break;
            }
        }
        self.refresh_open_gauge().await?;
        Ok(total)
    }

    /// Sets the open-entries gauge from the database.
    pub async fn refresh_open_gauge(&self) -> Result<(), StoreError> {
        let open = self.store.dlq_open_count().await?;
        self.metrics.open_entries.set(open.min(i64::MAX as u64) as i64);
        Ok(())
    }

    /// After a resolution made through this process: wakes the namespaces whose
    /// steps it made ready and refreshes the gauge (best effort).
    pub async fn resolved(&self, outcome: &DlqResolveOutcome) {
        if let DlqResolveOutcome::Resolved {
            enqueued_namespaces, ..
        } = outcome
        {
            for ns in enqueued_namespaces {
                self.wake.wake(ns);
            }
        }
        if let Err(e) = self.refresh_open_gauge().await {
            tracing::warn!(error = %e, "could not refresh the open DLQ entries gauge");
        }
    }

    /// Starts the actor (when enabled): sweeps at start and every `interval_ms`
    /// until shutdown. A failed sweep is logged and counted; the next tick retries.
    pub fn spawn(self, shutdown: Shutdown) {
        if !self.config.enabled {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(self.config.interval_ms.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tick.tick() => match self.sweep_once().await {
                        Ok(_) => self.metrics.sweeps.with_label_values(&["ok"]).inc(),
                        Err(e) => {
                            self.metrics.sweeps.with_label_values(&["error"]).inc();
                            tracing::warn!(error = %e, "staleness sweep failed; will retry");
                        }
                    },
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_rule_off_and_defaults_are_minutes() {
        let mut c = StalenessConfig::default();
        assert_eq!(c.thresholds().waiting_for_dependencies_ms, Some(3_600_000));
        c.error_ms = 0;
        assert_eq!(c.thresholds().error_ms, None);
    }

    #[test]
    fn the_metrics_register_once_per_registry() {
        let registry = Registry::new();
        assert!(DlqMetrics::register(&registry).is_ok());
        assert!(DlqMetrics::register(&registry).is_err());
    }
}
