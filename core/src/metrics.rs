//! Metrics: one Prometheus registry per engine (no global registry, so one process
//! may run many engines, as the tests do), rendered as Prometheus text by
//! `GET /metrics`. Every metric is listed with its labels in `docs/metrics.md`.
//!
//! Instrumentation is one call where the thing happens: TaskRequest's creations
//! (`engine.rs`), claims (StepExecutor), results, retries and task outcomes
//! (ResultProcessor), lease expiries (StepEnqueuer), rejected creations
//! (admission), HTTP requests (the API). Gauges that describe a level — ready
//! steps per namespace, channel fill, breaker state — are set by their owners or
//! read from probes when the registry is rendered.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Reads how full one bounded channel is: `(messages waiting, capacity)`, or None
/// once the channel is closed.
pub type ChannelProbe = Box<dyn Fn() -> Option<(usize, usize)> + Send + Sync>;

/// A probe for an mpsc channel that does not keep the channel open (it holds a weak
/// sender).
pub fn channel_probe<T: Send + 'static>(sender: &mpsc::Sender<T>) -> ChannelProbe {
    let weak = sender.downgrade();
    Box::new(move || {
        let s = weak.upgrade()?;
        Some((s.max_capacity() - s.capacity(), s.max_capacity()))
    })
}

/// Histogram buckets for step handler durations, in seconds (1 ms to 5 min).
const STEP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Histogram buckets for HTTP request durations, in seconds (100 µs to 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The metrics of one engine.
pub struct EngineMetrics {
    registry: Registry,
    /// `tasker_tasks_created_total{namespace}`.
    pub tasks_created: IntCounterVec,
    /// `tasker_tasks_deduplicated_total{namespace}`: submissions answered with an existing task.
    pub tasks_deduplicated: IntCounterVec,
    /// `tasker_tasks_completed_total{namespace}`.
    pub tasks_completed: IntCounterVec,
    /// `tasker_tasks_failed_total{namespace}`: tasks that ended in `error`.
    pub tasks_failed: IntCounterVec,
    /// `tasker_tasks_blocked_total{namespace}`: tasks held in `blocked_by_failures`.
    pub tasks_blocked: IntCounterVec,
    /// `tasker_tasks_cancelled_total{namespace}`.
    pub tasks_cancelled: IntCounterVec,
    /// `tasker_task_creations_rejected_total{reason}`: refused by backpressure.
    pub creations_rejected: IntCounterVec,
    /// `tasker_steps_claimed_total{namespace}`.
    pub steps_claimed: IntCounterVec,
    /// `tasker_step_results_total{namespace, outcome}`: complete, retry, error, rejected.
    pub step_results: IntCounterVec,
    /// `tasker_step_retries_total{namespace}`.
    pub step_retries: IntCounterVec,
    /// `tasker_lease_expiries_total{namespace}`.
    pub lease_expiries: IntCounterVec,
    /// `tasker_step_duration_seconds{namespace, handler, outcome}`.
    pub step_duration: HistogramVec,
    /// `tasker_ready_steps{namespace}`: enqueued steps waiting for a worker.
    pub ready_steps: IntGaugeVec,
    /// `tasker_channel_fill_ratio{channel}`.
    pub channel_fill: GaugeVec,
    /// `tasker_channel_capacity{channel}`.
    pub channel_capacity: IntGaugeVec,
    /// `tasker_breaker_state{breaker}`: 0 closed, 1 half-open, 2 open.
    pub breaker_state: IntGaugeVec,
    /// `tasker_breaker_transitions_total{breaker, to}`.
    pub breaker_transitions: IntCounterVec,
    /// `tasker_http_requests_total{method, route, status}`.
    pub http_requests: IntCounterVec,
    /// `tasker_http_request_duration_seconds{method, route}`.
    pub http_duration: HistogramVec,
    /// `tasker_domain_events_rejected_total{namespace, event, source}`: domain
    /// events whose payload failed their schema (`source`: `declared` or `explicit`).
    pub domain_events_rejected: IntCounterVec,
    /// `tasker_domain_events_published_total{namespace, mode}`: domain events
    /// delivered (`durable`: rows stored with results or on their own; `fast`:
    /// in-process publishes).
    pub domain_events_published: IntCounterVec,
    probes: Mutex<Vec<(String, ChannelProbe)>>,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMetrics").finish_non_exhaustive()
    }
}

/// A shared handle to an engine's metrics.
pub type SharedMetrics = Arc<EngineMetrics>;

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl EngineMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let r = Registry::new();
        let ns = &["namespace"];
        let channel_fill = GaugeVec::new(
            Opts::new(
                "tasker_channel_fill_ratio",
                "How full each bounded channel is (messages waiting / capacity), 0 to 1.",
            ),
            &["channel"],
        )
        .expect("valid metric");
        r.register(Box::new(channel_fill.clone())).expect("unique metric");
        Self {
            tasks_created: counter(&r, "tasker_tasks_created_total", "Tasks created.", ns),
            tasks_deduplicated: counter(
                &r,
                "tasker_tasks_deduplicated_total",
                "Submissions answered with an existing task (same identity or idempotency key).",
                ns,
            ),
            tasks_completed: counter(&r, "tasker_tasks_completed_total", "Tasks that completed.", ns),
            tasks_failed: counter(&r, "tasker_tasks_failed_total", "Tasks that ended in error.", ns),
            tasks_blocked: counter(
                &r,
                "tasker_tasks_blocked_total",
                "Tasks held in blocked_by_failures for an operator.",
                ns,
            ),
            tasks_cancelled: counter(&r, "tasker_tasks_cancelled_total", "Tasks cancelled.", ns),
            creations_rejected: counter(
                &r,
                "tasker_task_creations_rejected_total",
                "Task creations refused by backpressure, by reason.",
                &["reason"],
            ),
            steps_claimed: counter(
                &r,
                "tasker_steps_claimed_total",
                "Steps claimed by this process's worker.",
                ns,
            ),
            step_results: counter(
                &r,
                "tasker_step_results_total",
                "Step results written, by outcome (complete, retry, error, rejected).",
                &["namespace", "outcome"],
            ),
            step_retries: counter(
                &r,
                "tasker_step_retries_total",
                "Failed attempts scheduled for a retry.",
                ns,
            ),
            lease_expiries: counter(
                &r,
                "tasker_lease_expiries_total",
                "Claims whose lease expired (handed back to the queue, or failed as a timeout past the deadline).",
                ns,
            ),
            step_duration: histogram(
                &r,
                "tasker_step_duration_seconds",
                "How long step handlers ran, by namespace, handler and outcome.",
                &["namespace", "handler", "outcome"],
                STEP_BUCKETS,
            ),
            ready_steps: gauge(
                &r,
                "tasker_ready_steps",
                "Enqueued steps waiting for a worker, per namespace (sampled).",
                ns,
            ),
            channel_fill,
            channel_capacity: gauge(
                &r,
                "tasker_channel_capacity",
                "Capacity of each bounded channel.",
                &["channel"],
            ),
            breaker_state: gauge(
                &r,
                "tasker_breaker_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                &["breaker"],
            ),
            breaker_transitions: counter(
                &r,
                "tasker_breaker_transitions_total",
                "Circuit breaker state changes, by the state entered.",
                &["breaker", "to"],
            ),
            http_requests: counter(
                &r,
                "tasker_http_requests_total",
                "HTTP API requests, by method, route and status.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                &r,
                "tasker_http_request_duration_seconds",
                "HTTP API request durations, by method and route.",
                &["method", "route"],
                HTTP_BUCKETS,
            ),
            domain_events_rejected: counter(
                &r,
                "tasker_domain_events_rejected_total",
                "Domain events refused because their payload failed the declared JSON Schema.",
                &["namespace", "event", "source"],
            ),
            domain_events_published: counter(
                &r,
                "tasker_domain_events_published_total",
                "Domain events delivered, by path (durable rows stored, fast in-process publishes).",
                &["namespace", "mode"],
            ),
            registry: r,
            probes: Mutex::new(Vec::new()),
        }
    }

    /// Reports the fill level of the channel `name` through `probe` at each render.
    pub fn watch_channel(&self, name: &str, probe: ChannelProbe) {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|(n, _)| n != name);
        probes.push((name.to_string(), probe));
    }

    /// Reads every channel probe into the fill gauges (closed channels are dropped).
    pub fn refresh_channels(&self) {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|(name, probe)| match probe() {
            Some((used, cap)) => {
                self.channel_capacity.with_label_values(&[name]).set(cap as i64);
                self.channel_fill
                    .with_label_values(&[name])
                    .set(if cap == 0 { 0.0 } else { used as f64 / cap as f64 });
                true
            }
            None => false,
        });
    }

    /// Records a breaker's change of state.
    pub fn breaker_changed(&self, breaker: &str, state: crate::breaker::BreakerState) {
        self.breaker_state
            .with_label_values(&[breaker])
            .set(state.gauge_value());
        self.breaker_transitions
            .with_label_values(&[breaker, state.as_str()])
            .inc();
    }

    /// The registry in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        self.refresh_channels();
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The registry itself (to add an application's own metrics).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The content type of [`EngineMetrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_engines_keep_separate_counts() {
        let (a, b) = (EngineMetrics::new(), EngineMetrics::new());
        a.tasks_created.with_label_values(&["billing"]).inc();
        assert!(a
            .render()
            .contains("tasker_tasks_created_total{namespace=\"billing\"} 1"));
        assert!(!b.render().contains("namespace=\"billing\""));
    }

    #[tokio::test]
    async fn a_channel_probe_reports_fill_and_forgets_closed_channels() {
        let m = EngineMetrics::new();
        let (tx, rx) = mpsc::channel::<u8>(4);
        tx.send(1).await.unwrap();
        m.watch_channel("test", channel_probe(&tx));
        let text = m.render();
        assert!(
            text.contains("tasker_channel_fill_ratio{channel=\"test\"} 0.25"),
            "{text}"
        );
        assert!(text.contains("tasker_channel_capacity{channel=\"test\"} 4"), "{text}");
        drop((tx, rx));
        m.refresh_channels();
        assert!(m.probes.lock().unwrap().is_empty());
    }
}
