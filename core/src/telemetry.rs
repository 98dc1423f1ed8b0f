//! Logs and traces of the `tasker` command: log lines on stderr (JSON lines, or
//! text for people), and the same spans exported over OTLP/HTTP when a collector is
//! configured.
//!
//! - `TASKER_LOG` sets the filter (an `EnvFilter` directive; default `warn`).
//! - `TASKER_LOG_FORMAT` is `json` or `text`; the long-running commands
//!   (`orchestrator`, `worker`) default to `json`, the others to `text`.
//! - Export: `telemetry.otlp_endpoint` (config) or the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables
//!   (a variable wins over the config key; the `tasker` build must have the `otlp`
//!   feature, on by default). `OTEL_SERVICE_NAME` or `telemetry.service_name` names
//!   the service (default `tasker`); the other `OTEL_*` variables the OpenTelemetry
//!   SDK reads (headers, timeouts) apply as usual.
//!
//! Spans: `http_request` (API), `task.submit`, `step.claim`, `step.execute`,
//! `step.complete`, each carrying the task's `correlation_id` where one is known, so
//! one task is followed across processes and into handler logs (see docs/metrics.md).
//! The language bindings do not use this module: their hosts receive the core's
//! log records through `bridge::logs`.

use crate::config::TelemetryConfig;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (with the current span's fields).
    Json,
    /// Human-readable lines.
    Text,
}

/// Flushes exported spans when dropped (at the end of `main`).
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: flushing traces to the OTLP collector failed: {e}");
            }
        }
    }
}

/// The OTLP traces endpoint to export to, if any: the standard variables first,
/// then the config key.
pub fn otlp_endpoint(config: &TelemetryConfig, get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
        .or_else(|| {
            config
                .otlp_endpoint
                .as_ref()
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
        .filter(|e| !e.is_empty())
}

/// The log format from `TASKER_LOG_FORMAT`, else `default`.
pub fn log_format(default: LogFormat) -> LogFormat {
    match std::env::var("TASKER_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => default,
    }
}

/// Installs the process's subscriber: stderr logs in `format`, plus OTLP export when
/// configured. Returns a guard that flushes the export when dropped. A second call
/// (a subscriber already installed) changes nothing.
pub fn init(config: &TelemetryConfig, format: LogFormat) -> TelemetryGuard {
    let filter = || EnvFilter::try_from_env("TASKER_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otlp")]
    {
        if let Some(endpoint) = otlp_endpoint(config, |k| std::env::var(k).ok()) {
            match otlp::provider(config, &endpoint) {
                Ok(provider) => {
                    use opentelemetry::trace::TracerProvider as _;
                    let tracer = provider.tracer("tasker");
                    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(
                        EnvFilter::try_from_env("TASKER_TRACE").unwrap_or_else(|_| EnvFilter::new("info")),
                    );
                    let _ = registry.with(layer).try_init();
                    return TelemetryGuard {
                        provider: Some(provider),
                    };
                }
                Err(e) => eprintln!("warning: OTLP export to {endpoint} is off: {e}"),
            }
        }
    }
    #[cfg(not(feature = "otlp"))]
    if otlp_endpoint(config, |k| std::env::var(k).ok()).is_some() {
        eprintln!("warning: an OTLP endpoint is configured but this build has no `otlp` feature");
    }
    let _ = registry.try_init();
    TelemetryGuard::default()
}

#[cfg(feature = "otlp")]
mod otlp {
    use super::TelemetryConfig;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;

    /// A tracer provider exporting batches of spans to `endpoint` over OTLP/HTTP (protobuf).
    pub fn provider(config: &TelemetryConfig, endpoint: &str) -> Result<SdkTracerProvider, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| e.to_string())?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .or_else(|| config.service_name.clone())
            .unwrap_or_else(|| "tasker".into());
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_otlp_endpoint_comes_from_the_standard_variables_before_the_config() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("http://collector:4318/".into()),
            service_name: None,
        };
        fn env(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
            let m: HashMap<&str, &str> = pairs.iter().copied().collect();
            move |k: &str| m.get(k).map(|v| v.to_string())
        }
        assert_eq!(
            otlp_endpoint(&config, env(&[])).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let base = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318")]);
        assert_eq!(
            otlp_endpoint(&config, base).as_deref(),
            Some("http://other:4318/v1/traces")
        );
        let traces = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/x"),
        ]);
        assert_eq!(otlp_endpoint(&config, traces).as_deref(), Some("http://traces:9999/x"));
        assert_eq!(otlp_endpoint(&TelemetryConfig::default(), env(&[])), None);
    }
}
