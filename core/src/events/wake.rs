//! Wake-ups: after a commit that made steps claimable, the committing component
//! notifies the namespace; workers waiting on it claim at once instead of waiting
//! for their polling interval. Processes sharing an SQLite file do not see each
//! other's notifications; their polling interval covers that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One `Notify` per namespace.
#[derive(Debug, Default, Clone)]
pub struct WakeHub {
    inner: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl WakeHub {
    /// The notifier of `namespace`.
    pub fn notifier(&self, namespace: &str) -> Arc<Notify> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(namespace.to_string()).or_default().clone()
    }

    /// Wakes a worker of `namespace` (remembered if none is waiting).
    pub fn wake(&self, namespace: &str) {
        self.notifier(namespace).notify_one();
    }
}
