//! Engine configuration: defaults, overridden by a TOML file, overridden by
//! `TASKER_*` environment variables, overridden by command-line flags. Every
//! setting and its default is listed in `docs/configuration.md`.

use crate::breaker::BreakersConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The default SQLite file, in the current folder.
pub const DEFAULT_DATABASE_FILE: &str = "tasker.db";

/// Everything an engine process can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Database URL (`sqlite://PATH` or a path; `postgres://…` once that backend lands).
    pub database_url: String,
    /// Handlers that may run at once in this process.
    pub concurrency: usize,
    /// Most steps claimed per statement.
    pub claim_batch: u32,
    /// Capacity of the worker's dispatch channel.
    pub dispatch_channel_capacity: usize,
    /// Capacity of the worker's completion channel.
    pub completion_channel_capacity: usize,
    /// Most results written per transaction.
    pub completion_batch: usize,
    /// Capacity of the TaskRequest actor's queue.
    pub task_request_channel_capacity: usize,
    /// Capacity of the StepEnqueuer's wake-up queue.
    pub wake_channel_capacity: usize,
    /// Fallback polling interval for claims, in ms (covers other processes' commits).
    pub poll_interval_ms: u64,
    /// Lease length of a claim, in ms.
    pub lease_ms: i64,
    /// Interval of the expired-lease sweep, in ms.
    pub lease_sweep_interval_ms: u64,
    /// Grace period for running handlers at shutdown, in ms.
    pub shutdown_grace_ms: u64,
    /// How workers learn about steps made ready by other processes.
    pub wakeup_mode: WakeupMode,
    /// The HTTP API (`[api]`).
    pub api: ApiConfig,
    /// When task creation pushes back (`[backpressure]`).
    pub backpressure: BackpressureConfig,
    /// The circuit breakers (`[breakers.database]`, `[breakers.ffi_completion]`).
    pub breakers: BreakersConfig,
    /// Trace export (`[telemetry]`).
    pub telemetry: TelemetryConfig,
    /// The staleness sweep and its thresholds (`[staleness]`).
    pub staleness: crate::orchestration::staleness::StalenessConfig,
}

/// The HTTP API's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address `tasker orchestrator` listens on (`HOST:PORT`; port 0 picks a free one).
    pub bind: String,
    /// Serve the API at all (`tasker orchestrator --no-api` turns it off).
    pub enabled: bool,
    /// Bearer tokens accepted on every route but `/health`; empty: no authentication.
    pub tokens: Vec<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Largest page `GET /v1/tasks` returns.
    pub max_page_size: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            enabled: true,
            tokens: vec![],
            body_limit_bytes: 1024 * 1024,
            max_page_size: 1000,
        }
    }
}

/// When task creation is refused with "overloaded, retry after N seconds" (HTTP 503).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpressureConfig {
    /// Refuse new tasks once TaskRequest's queue is this full (0 to 1).
    pub task_request_high_water: f64,
    /// Refuse new tasks of a namespace with more ready steps than this waiting for workers.
    pub max_ready_steps: u64,
    /// Per-namespace limits that replace `max_ready_steps`.
    pub namespace_max_ready_steps: BTreeMap<String, u64>,
    /// How often the ready steps per namespace are counted, in ms.
    pub sample_interval_ms: u64,
    /// Retry-After for a full TaskRequest queue, in seconds.
    pub queue_full_retry_after_secs: u64,
    /// Retry-After for a namespace over its ready-step limit, in seconds.
    pub ready_limit_retry_after_secs: u64,
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        Self {
            task_request_high_water: 0.9,
            max_ready_steps: 100_000,
            namespace_max_ready_steps: BTreeMap::new(),
            sample_interval_ms: 1_000,
            queue_full_retry_after_secs: 1,
            ready_limit_retry_after_secs: 5,
        }
    }
}

impl BackpressureConfig {
    /// The ready-step limit of `namespace`.
    pub fn ready_limit(&self, namespace: &str) -> u64 {
        self.namespace_max_ready_steps
            .get(namespace)
            .copied()
            .unwrap_or(self.max_ready_steps)
    }
}

/// Where traces go (besides the log lines on stderr).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP endpoint of a collector (e.g. `http://localhost:4318`); the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` override it.
    /// None and no variable: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans (`OTEL_SERVICE_NAME` overrides; default `tasker`).
    pub service_name: Option<String>,
}

/// The safety-net polling interval of [`WakeupMode::Event`].
pub const EVENT_MODE_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How a process's workers learn about steps made ready by other processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WakeupMode {
    /// LISTEN/NOTIFY (PostgreSQL) plus polling every `poll_interval_ms`.
    #[default]
    Hybrid,
    /// LISTEN/NOTIFY, polling only every 30 s as a safety net (PostgreSQL; on SQLite,
    /// which has no notifications, this behaves like `hybrid`).
    Event,
    /// No LISTEN connection; polling every `poll_interval_ms` (works behind a
    /// connection pooler in transaction mode).
    Polling,
}

impl WakeupMode {
    /// Whether the store should LISTEN for wake-ups.
    pub fn listens(self) -> bool {
        !matches!(self, Self::Polling)
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Event => "event",
            Self::Polling => "polling",
        }
    }
}

impl std::fmt::Display for WakeupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WakeupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hybrid" => Ok(Self::Hybrid),
            "event" => Ok(Self::Event),
            "polling" => Ok(Self::Polling),
            other => Err(format!(
                "unknown wake-up mode `{other}` (expected hybrid, event or polling)"
            )),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            database_url: format!("sqlite://{DEFAULT_DATABASE_FILE}"),
            concurrency: 64,
            claim_batch: 64,
            dispatch_channel_capacity: crate::worker::channels::DEFAULT_DISPATCH_CAPACITY,
            completion_channel_capacity: crate::worker::channels::DEFAULT_COMPLETION_CAPACITY,
            completion_batch: 256,
            task_request_channel_capacity: 5000,
            wake_channel_capacity: 10_000,
            poll_interval_ms: 200,
            lease_ms: 30_000,
            lease_sweep_interval_ms: 5_000,
            shutdown_grace_ms: 10_000,
            wakeup_mode: WakeupMode::Hybrid,
            api: ApiConfig::default(),
            backpressure: BackpressureConfig::default(),
            breakers: BreakersConfig::default(),
            telemetry: TelemetryConfig::default(),
            staleness: Default::default(),
        }
    }
}

/// Configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid config file `{path}`: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable has a bad value.
    #[error("invalid value `{value}` for {var}: {reason}")]
    Env {
        /// Variable name.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl EngineConfig {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            None => Self::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    /// Applies `TASKER_*` variables read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                var: var.into(),
                value,
                reason: e.to_string(),
            })
        }
        if let Some(v) = get("TASKER_DATABASE_URL") {
            self.database_url = v;
        }
        macro_rules! num {
            ($var:literal, $field:ident) => {
                if let Some(v) = get($var) {
                    self.$field = parse($var, v)?;
                }
            };
        }
        num!("TASKER_CONCURRENCY", concurrency);
        num!("TASKER_CLAIM_BATCH", claim_batch);
        num!("TASKER_DISPATCH_CHANNEL_CAPACITY", dispatch_channel_capacity);
        num!("TASKER_COMPLETION_CHANNEL_CAPACITY", completion_channel_capacity);
        num!("TASKER_COMPLETION_BATCH", completion_batch);
        num!("TASKER_TASK_REQUEST_CHANNEL_CAPACITY", task_request_channel_capacity);
        num!("TASKER_WAKE_CHANNEL_CAPACITY", wake_channel_capacity);
        num!("TASKER_POLL_INTERVAL_MS", poll_interval_ms);
        num!("TASKER_LEASE_MS", lease_ms);
        num!("TASKER_LEASE_SWEEP_INTERVAL_MS", lease_sweep_interval_ms);
        num!("TASKER_SHUTDOWN_GRACE_MS", shutdown_grace_ms);
        num!("TASKER_WAKEUP_MODE", wakeup_mode);
        macro_rules! nested {
            ($var:literal, $($field:ident).+) => {
                if let Some(v) = get($var) {
                    self.$($field).+ = parse($var, v)?;
                }
            };
        }
        if let Some(v) = get("TASKER_API_BIND") {
            self.api.bind = v;
        }
        nested!("TASKER_API_ENABLED", api.enabled);
        if let Some(v) = get("TASKER_API_TOKENS") {
            self.api.tokens = v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
        }
        nested!("TASKER_API_BODY_LIMIT_BYTES", api.body_limit_bytes);
        nested!("TASKER_API_MAX_PAGE_SIZE", api.max_page_size);
        nested!(
            "TASKER_BACKPRESSURE_TASK_REQUEST_HIGH_WATER",
            backpressure.task_request_high_water
        );
        nested!("TASKER_BACKPRESSURE_MAX_READY_STEPS", backpressure.max_ready_steps);
        nested!(
            "TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS",
            backpressure.sample_interval_ms
        );
        nested!(
            "TASKER_BREAKER_DATABASE_FAILURE_THRESHOLD",
            breakers.database.failure_threshold
        );
        nested!("TASKER_BREAKER_DATABASE_OPEN_MS", breakers.database.open_ms);
        nested!(
            "TASKER_BREAKER_DATABASE_SUCCESS_THRESHOLD",
            breakers.database.success_threshold
        );
        nested!(
            "TASKER_BREAKER_DATABASE_CALL_TIMEOUT_MS",
            breakers.database.call_timeout_ms
        );
        nested!(
            "TASKER_BREAKER_FFI_COMPLETION_FAILURE_THRESHOLD",
            breakers.ffi_completion.failure_threshold
        );
        nested!("TASKER_BREAKER_FFI_COMPLETION_OPEN_MS", breakers.ffi_completion.open_ms);
        nested!(
            "TASKER_BREAKER_FFI_COMPLETION_SUCCESS_THRESHOLD",
            breakers.ffi_completion.success_threshold
        );
        if let Some(v) = get("TASKER_OTLP_ENDPOINT") {
            self.telemetry.otlp_endpoint = Some(v);
        }
        nested!("TASKER_STALENESS_ENABLED", staleness.enabled);
        nested!("TASKER_STALENESS_INTERVAL_MS", staleness.interval_ms);
        nested!("TASKER_STALENESS_BATCH_SIZE", staleness.batch_size);
        nested!("TASKER_STALENESS_STEP_LEASE_GRACE_MS", staleness.step_lease_grace_ms);
        nested!("TASKER_STALENESS_STEP_ENQUEUED_MS", staleness.step_enqueued_ms);
        nested!(
            "TASKER_STALENESS_WAITING_FOR_DEPENDENCIES_MS",
            staleness.waiting_for_dependencies_ms
        );
        nested!("TASKER_STALENESS_WAITING_FOR_RETRY_MS", staleness.waiting_for_retry_ms);
        nested!("TASKER_STALENESS_STEPS_IN_PROCESS_MS", staleness.steps_in_process_ms);
        nested!("TASKER_STALENESS_BLOCKED_MS", staleness.blocked_ms);
        nested!("TASKER_STALENESS_ERROR_MS", staleness.error_ms);
        nested!("TASKER_STALENESS_MAX_LIFETIME_MS", staleness.max_lifetime_ms);
        Ok(())
    }

    /// The polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The worker's polling interval for this wake-up mode: `poll_interval_ms`,
    /// except in `event` mode over a store that delivers notifications
    /// (`notifications`), where polling is only a 30 s safety net.
    pub fn worker_poll_interval(&self, notifications: bool) -> Duration {
        match self.wakeup_mode {
            WakeupMode::Event if notifications => EVENT_MODE_POLL_INTERVAL,
            _ => self.poll_interval(),
        }
    }

    /// How to open this configuration's store.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            listen: self.wakeup_mode.listens(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn environment_overrides_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasker.toml");
        std::fs::write(&path, "concurrency = 8\npoll_interval_ms = 50\n").unwrap();
        let mut cfg: EngineConfig = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((cfg.concurrency, cfg.poll_interval_ms, cfg.lease_ms), (8, 50, 30_000));
        let env: HashMap<&str, &str> = [("TASKER_CONCURRENCY", "3")].into();
        cfg.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.concurrency, 3);
    }

    #[test]
    fn the_wakeup_mode_chooses_listen_and_the_poll_interval() {
        let mut cfg: EngineConfig = toml::from_str("wakeup_mode = \"event\"\npoll_interval_ms = 50\n").unwrap();
        assert_eq!(cfg.wakeup_mode, WakeupMode::Event);
        assert!(cfg.store_options().listen);
        assert_eq!(cfg.worker_poll_interval(true), EVENT_MODE_POLL_INTERVAL);
        assert_eq!(cfg.worker_poll_interval(false), Duration::from_millis(50));
        cfg.apply_env(|k| (k == "TASKER_WAKEUP_MODE").then(|| "polling".to_string()))
            .unwrap();
        assert!(!cfg.store_options().listen);
        assert_eq!(cfg.worker_poll_interval(true), Duration::from_millis(50));
        let err = cfg
            .apply_env(|k| (k == "TASKER_WAKEUP_MODE").then(|| "push".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("TASKER_WAKEUP_MODE"), "{err}");
        assert_eq!(EngineConfig::default().wakeup_mode, WakeupMode::Hybrid);
    }

    #[test]
    fn api_backpressure_and_breaker_settings_come_from_tables_and_variables() {
        let text = "[api]\nbind = \"0.0.0.0:9000\"\ntokens = [\"a\"]\n\n[backpressure]\nmax_ready_steps = 50\n\n\
                    [backpressure.namespace_max_ready_steps]\nbilling = 5\n\n[breakers.database]\nopen_ms = 100\n";
        let mut cfg: EngineConfig = toml::from_str(text).unwrap();
        assert_eq!(cfg.api.bind, "0.0.0.0:9000");
        assert_eq!(cfg.backpressure.ready_limit("billing"), 5);
        assert_eq!(cfg.backpressure.ready_limit("other"), 50);
        assert_eq!(cfg.breakers.database.open_ms, 100);
        assert_eq!(
            cfg.breakers.database.failure_threshold, 5,
            "unset keys keep their defaults"
        );
        let env: HashMap<&str, &str> = [
            ("TASKER_API_TOKENS", "one, two,"),
            ("TASKER_BREAKER_DATABASE_OPEN_MS", "250"),
            ("TASKER_API_ENABLED", "false"),
        ]
        .into();
        cfg.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(cfg.api.tokens, vec!["one".to_string(), "two".to_string()]);
        assert_eq!(cfg.breakers.database.open_ms, 250);
        assert!(!cfg.api.enabled);
    }

    #[test]
    fn bad_values_name_the_variable_or_the_file() {
        let mut cfg = EngineConfig::default();
        let err = cfg
            .apply_env(|k| (k == "TASKER_LEASE_MS").then(|| "soon".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("TASKER_LEASE_MS"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "concurency = 8\n").unwrap();
        let err = EngineConfig::load(Some(&path)).unwrap_err();
        assert!(
            err.to_string().contains("bad.toml") && err.to_string().contains("concurency"),
            "{err}"
        );
    }
}
