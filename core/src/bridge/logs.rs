//! Log forwarding: the core's tracing output, kept in a bounded buffer that a
//! binding drains (`drain_log_records`) into its language's logger. Rust never
//! calls into the host language; the host pulls.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Records kept before the oldest are dropped.
pub const LOG_BUFFER_CAPACITY: usize = 10_000;

/// One log record.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// The Rust module that logged it.
    pub target: String,
    /// The message.
    pub message: String,
    /// Structured fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// When (epoch ms).
    pub timestamp_ms: i64,
    /// The task's correlation id, when the record is about a step or task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[derive(Default)]
struct Buffer {
    records: VecDeque<LogRecord>,
    dropped: u64,
}

static BUFFER: OnceLock<Mutex<Buffer>> = OnceLock::new();

fn buffer() -> &'static Mutex<Buffer> {
    BUFFER.get_or_init(|| Mutex::new(Buffer::default()))
}

struct Collect<'a> {
    message: String,
    fields: &'a mut serde_json::Map<String, serde_json::Value>,
}

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.insert(
                field.name().to_string(),
                serde_json::Value::String(format!("{value:?}")),
            );
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), serde_json::Value::String(value.to_string()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_string(), value.into());
    }
}

struct BufferLayer;

impl<S: tracing::Subscriber> Layer<S> for BufferLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = serde_json::Map::new();
        let mut visit = Collect {
            message: String::new(),
            fields: &mut fields,
        };
        event.record(&mut visit);
        let message = visit.message;
        let correlation_id = fields
            .get("correlation_id")
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        let record = LogRecord {
            level: match *event.metadata().level() {
                tracing::Level::ERROR => "error",
                tracing::Level::WARN => "warn",
                tracing::Level::INFO => "info",
                tracing::Level::DEBUG => "debug",
                tracing::Level::TRACE => "trace",
            },
            target: event.metadata().target().to_string(),
            message,
            fields,
            timestamp_ms: crate::clock::system().now_ms(),
            correlation_id,
        };
        let mut buf = buffer().lock().unwrap_or_else(|p| p.into_inner());
        if buf.records.len() >= LOG_BUFFER_CAPACITY {
            buf.records.pop_front();
            buf.dropped += 1;
        }
        buf.records.push_back(record);
    }
}

/// Installs the forwarding subscriber for this process at `level` (an
/// `EnvFilter` directive such as `info` or `tasker_core=debug`; `RUST_LOG` wins
/// when set). Idempotent; fails only on a bad directive. Returns false when
/// another subscriber was already installed (then nothing is forwarded).
pub fn install_log_forwarding(level: &str) -> Result<bool, super::BridgeError> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| super::BridgeError::InvalidConfig(format!("log level `{level}`: {e}")))?;
    Ok(*INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(BufferLayer.with_filter(filter))
            .try_init()
            .is_ok()
    }))
}

/// Takes up to `max` buffered records, oldest first. When records were dropped
/// because nobody drained them, a `warn` record saying how many comes first.
pub fn drain_log_records(max: usize) -> Vec<LogRecord> {
    let mut buf = buffer().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::new();
    if buf.dropped > 0 {
        out.push(LogRecord {
            level: "warn",
            target: "tasker_core::bridge::logs".into(),
            message: format!("{} log records were dropped: drain them more often", buf.dropped),
            fields: Default::default(),
            timestamp_ms: crate::clock::system().now_ms(),
            correlation_id: None,
        });
        buf.dropped = 0;
    }
    let n = max.min(buf.records.len());
    out.extend(buf.records.drain(..n));
    out
}

/// [`drain_log_records`] as a JSON array.
pub fn drain_log_records_json(max: usize) -> String {
    serde_json::to_string(&drain_log_records(max)).unwrap_or_else(|_| "[]".into())
}
