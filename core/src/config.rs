//! Engine configuration: defaults, overridden by a TOML file, overridden by
//! `TASKER_*` environment variables, overridden by command-line flags. Every
//! setting and its default is listed in `docs/configuration.md`.

use serde::{Deserialize, Serialize};
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
