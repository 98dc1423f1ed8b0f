//! TemplateCache: the worker's view of templates. Holds the registry loaded from
//! template folders (shared with TaskRequest) and answers what a running step's
//! template declares (its domain events and their compiled payload schemas). Running
//! tasks never need YAML: their handler, retry and timeout settings were copied onto
//! the step rows at creation. A template this process did not load (a `tasker worker`
//! has no template folder) is read once from the database, where every task's
//! template was registered when the task was created ([`TemplateCache::ensure_loaded`]).

use crate::orchestration::template_lookup::registered_template;
use crate::store::SharedStore;
use crate::template::{EventDeclaration, LoadedTemplate, SharedValidator, TemplateRegistry};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Shared template registry with step lookups.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    registry: Arc<RwLock<TemplateRegistry>>,
    /// Templates read from the database, by `namespace/name@version` (kept apart from
    /// the registry, so what this process resolves for new tasks does not change).
    fetched: Arc<RwLock<HashMap<String, Arc<LoadedTemplate>>>>,
    store: Option<SharedStore>,
}

impl TemplateCache {
    /// A cache over `registry`.
    pub fn new(registry: TemplateRegistry) -> Self {
        Self {
            registry: Arc::new(RwLock::new(registry)),
            ..Self::default()
        }
    }

    /// Reads templates this process did not load from `store` ([`Self::ensure_loaded`]).
    pub fn with_store(mut self, store: SharedStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Makes sure `namespace/name@version` can be answered for: when neither the
    /// registry nor an earlier fetch has it, reads it from the database. A failure is
    /// logged; the lookups then answer as for an unknown template (no declared events).
    pub async fn ensure_loaded(&self, namespace: &str, task_name: &str, version: &str) {
        let key = format!("{namespace}/{task_name}@{version}");
        if self.template(&key).is_some() {
            return;
        }
        let Some(store) = &self.store else {
            return;
        };
        match registered_template(store, &key).await {
            Ok(Some(t)) => {
                self.fetched.write().unwrap_or_else(|p| p.into_inner()).insert(key, t);
            }
            Ok(None) => {
                tracing::warn!(template = %key, "template not registered; its steps' declared events are skipped")
            }
            Err(e) => {
                tracing::warn!(template = %key, error = %e, "could not read template; its steps' declared events are skipped")
            }
        }
    }

    /// The template `namespace/name@version`: loaded here, or fetched earlier.
    fn template(&self, key: &str) -> Option<Arc<LoadedTemplate>> {
        let loaded = self
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .resolve(key)
            .ok();
        loaded.or_else(|| self.fetched.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned())
    }

    /// The shared registry.
    pub fn registry(&self) -> Arc<RwLock<TemplateRegistry>> {
        self.registry.clone()
    }

    /// The events a step of a template version declares (empty when the template is
    /// not loaded here).
    pub fn step_events(
        &self,
        namespace: &str,
        task_name: &str,
        version: &str,
        step_name: &str,
    ) -> Vec<EventDeclaration> {
        self.template(&format!("{namespace}/{task_name}@{version}"))
            .and_then(|t| t.template.step(step_name).map(|s| s.publishes_events.clone()))
            .unwrap_or_default()
    }

    /// The compiled payload schema a step of a template version declares for event
    /// `event` (None when it declares none, or the template is not loaded here).
    pub fn event_schema(
        &self,
        namespace: &str,
        task_name: &str,
        version: &str,
        step_name: &str,
        event: &str,
    ) -> Option<SharedValidator> {
        self.template(&format!("{namespace}/{task_name}@{version}"))
            .and_then(|t| t.event_schema(step_name, event))
    }
}
