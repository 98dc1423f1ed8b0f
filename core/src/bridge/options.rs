//! How a bridge is opened: the options every binding passes as one JSON object.

use crate::config::{EngineConfig, WakeupMode};
use serde::Deserialize;
use std::path::PathBuf;

/// Default handlers a bridge's host runs at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default bound on `extend_lease`: an attempt may run this long after its claim.
pub const DEFAULT_MAX_LEASE_EXTENSION_MS: i64 = 3_600_000;

/// Bridge options (unknown keys are refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeOptions {
    /// `sqlite://PATH`, a path, or `postgres://...`; default `TASKER_DATABASE_URL`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Namespaces whose steps this process claims; empty = a client only.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Most claimed steps held at once (handed out or waiting to be polled).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// YAML template files or folders, loaded and registered in the database.
    #[serde(default)]
    pub templates: Vec<PathBuf>,
    /// Also run core's Rust example handlers in this process.
    #[serde(default)]
    pub builtin_handlers: bool,
    /// How workers learn about steps other processes made ready.
    #[serde(default)]
    pub wakeup_mode: Option<WakeupMode>,
    /// Fallback polling interval, in ms.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Bound on `extend_lease`, in ms after the claim.
    #[serde(default)]
    pub max_lease_extension_ms: Option<i64>,
}

impl BridgeOptions {
    /// Parses the options JSON.
    pub fn from_json(json: &str) -> Result<Self, super::BridgeError> {
        serde_json::from_str(json).map_err(|e| super::BridgeError::InvalidConfig(format!("bridge options: {e}")))
    }

    /// The database URL: the option, else `TASKER_DATABASE_URL`.
    pub fn database_url(&self) -> Result<String, super::BridgeError> {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => Ok(url.clone()),
            _ => std::env::var("TASKER_DATABASE_URL").map_err(|_| {
                super::BridgeError::InvalidConfig(
                    "no database: pass database_url (sqlite://PATH or postgres://...) or set TASKER_DATABASE_URL"
                        .into(),
                )
            }),
        }
    }

    /// The engine configuration these options give (defaults, then `TASKER_*`
    /// environment overrides, then these options).
    pub fn engine_config(&self) -> Result<EngineConfig, super::BridgeError> {
        let mut config = EngineConfig::load(None).map_err(|e| super::BridgeError::InvalidConfig(e.to_string()))?;
        config.database_url = self.database_url()?;
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(super::BridgeError::InvalidConfig(
                "concurrency must be at least 1".into(),
            ));
        }
        config.concurrency = concurrency;
        if let Some(mode) = self.wakeup_mode {
            config.wakeup_mode = mode;
        }
        if let Some(ms) = self.poll_interval_ms {
            config.poll_interval_ms = ms.max(1);
        }
        Ok(config)
    }

    /// Bound on `extend_lease`.
    pub fn max_lease_extension_ms(&self) -> i64 {
        self.max_lease_extension_ms
            .unwrap_or(DEFAULT_MAX_LEASE_EXTENSION_MS)
            .max(1)
    }
}
