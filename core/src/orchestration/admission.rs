//! Admission: whether a new task may be created now, or the caller should come back
//! later (backpressure). TaskRequest's queue must have room below its high-water
//! mark, the task's namespace must have no more ready steps waiting than its limit,
//! and the `database` circuit breaker must not be open. A refusal carries how long
//! to wait; the HTTP API answers it with 503 and `Retry-After`, the bindings' clients
//! raise a retryable `Overloaded` error carrying `retry_after`.
//!
//! The ready steps per namespace are counted by a sampler every
//! `backpressure.sample_interval_ms` (one cheap query through the database breaker,
//! which also gives a half-open breaker its trial calls); admission reads the last
//! count, so it costs no query per task. The same counts feed the
//! `tasker_ready_steps` gauge.

use super::task_request::{CreateTaskError, TaskRequestHandle, TaskSubmission, TemplateRef};
use crate::breaker::{Breakers, GuardedError};
use crate::config::BackpressureConfig;
use crate::metrics::SharedMetrics;
use crate::shutdown::Shutdown;
use crate::store::{ReadyCount, SharedStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Decides whether task creation may go ahead.
#[derive(Debug)]
pub struct Admission {
    config: BackpressureConfig,
    requests: TaskRequestHandle,
    breakers: Arc<Breakers>,
    metrics: SharedMetrics,
    ready: RwLock<HashMap<String, u64>>,
}

/// Why a creation was refused, as a metric label.
fn refusal(reason: &'static str, metrics: &SharedMetrics) {
    metrics.creations_rejected.with_label_values(&[reason]).inc();
}

/// Whether a store error says the database is unreachable (it counts against the
/// `database` breaker), rather than a bad request or a conflict.
pub fn is_outage(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(_) | StoreError::Open { .. } | StoreError::Closed)
}

impl Admission {
    /// Admission over TaskRequest's queue, the engine's breakers and its metrics.
    pub fn new(
        config: BackpressureConfig,
        requests: TaskRequestHandle,
        breakers: Arc<Breakers>,
        metrics: SharedMetrics,
    ) -> Self {
        Self {
            config,
            requests,
            breakers,
            metrics,
            ready: RwLock::new(HashMap::new()),
        }
    }

    /// The namespaces whose workers a submission's task will need: its template's,
    /// and those its steps name for themselves (`steps[].namespace`).
    pub fn namespaces_of(submission: &TaskSubmission) -> Vec<String> {
        match &submission.template {
            TemplateRef::Loaded(t) => t.template.step_namespaces().into_iter().map(String::from).collect(),
            TemplateRef::Key(key) => vec![key.split_once('/').map(|(ns, _)| ns).unwrap_or(key).to_string()],
        }
    }

    /// Ok when a task needing the workers of `namespaces` may be created now;
    /// otherwise why not and when to try again (`CreateTaskError::Overloaded`).
    /// Counts refusals by reason.
    pub fn check_all(&self, namespaces: &[String]) -> Result<(), CreateTaskError> {
        if namespaces.is_empty() {
            return self.check("");
        }
        namespaces.iter().try_for_each(|ns| self.check(ns))
    }

    /// Ok when a task of `namespace` may be created now; otherwise why not and when
    /// to try again (`CreateTaskError::Overloaded`). Counts refusals by reason.
    pub fn check(&self, namespace: &str) -> Result<(), CreateTaskError> {
        if let Err(open) = self.breakers.database.check() {
            refusal("database_unavailable", &self.metrics);
            return Err(CreateTaskError::Overloaded {
                reason: format!("the database is unavailable ({open})"),
                retry_after_ms: open.retry_after_ms,
            });
        }
        let fill = self.requests.fill_level();
        if fill >= self.config.task_request_high_water {
            refusal("queue_full", &self.metrics);
            return Err(CreateTaskError::Overloaded {
                reason: format!(
                    "the task request queue is {:.0}% full (high water {:.0}%)",
                    fill * 100.0,
                    self.config.task_request_high_water * 100.0
                ),
                retry_after_ms: self.config.queue_full_retry_after_secs * 1000,
            });
        }
        let limit = self.config.ready_limit(namespace);
        let ready = self.ready_steps(namespace);
        if ready > limit {
            refusal("ready_limit", &self.metrics);
            return Err(CreateTaskError::Overloaded {
                reason: format!("namespace `{namespace}` has {ready} ready steps waiting (limit {limit})"),
                retry_after_ms: self.config.ready_limit_retry_after_secs * 1000,
            });
        }
        Ok(())
    }

    /// Checks admission, then submits without waiting for room in the queue (a full
    /// queue is refused as overloaded too).
    pub async fn try_submit(&self, submission: TaskSubmission) -> Result<crate::store::TaskCreated, CreateTaskError> {
        self.check_all(&Self::namespaces_of(&submission))?;
        let result = self.requests.try_submit(submission).await;
        match &result {
            Err(CreateTaskError::Overloaded { .. }) => refusal("queue_full", &self.metrics),
            Err(CreateTaskError::StoreFailed { .. }) => self.breakers.database.record_failure(),
            Err(CreateTaskError::Store(e)) if is_outage(e) => self.breakers.database.record_failure(),
            Ok(_) => self.breakers.database.record_success(),
            Err(_) => {}
        }
        result
    }

    /// The last count of ready steps in `namespace`.
    pub fn ready_steps(&self, namespace: &str) -> u64 {
        self.ready
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the counts (namespaces left out have none) and updates the gauge.
    pub fn set_ready_counts(&self, counts: Vec<ReadyCount>) {
        let mut ready = self.ready.write().unwrap_or_else(|p| p.into_inner());
        for ns in ready.keys() {
            if !counts.iter().any(|c| &c.namespace == ns) {
                self.metrics.ready_steps.with_label_values(&[ns]).set(0);
            }
        }
        ready.clear();
        for c in counts {
            self.metrics
                .ready_steps
                .with_label_values(&[&c.namespace])
                .set(c.ready as i64);
            ready.insert(c.namespace, c.ready);
        }
    }

    /// Counts the ready steps now, through the `database` breaker.
    pub async fn sample(&self, store: &SharedStore) -> Result<(), GuardedError<StoreError>> {
        let counts = self
            .breakers
            .database
            .call(is_outage, store.step_ready_counts())
            .await?;
        self.set_ready_counts(counts);
        Ok(())
    }

    /// Samples every `sample_interval_ms` until shutdown.
    pub fn spawn_sampler(self: Arc<Self>, store: SharedStore, shutdown: Shutdown) {
        let interval = Duration::from_millis(self.config.sample_interval_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tick.tick() => {
                        if let Err(e) = self.sample(&store).await {
                            tracing::debug!(error = %e, "counting ready steps failed");
                        }
                    }
                }
            }
        });
    }
}
