//! TemplateCache: the worker's view of templates. Holds the registry loaded from
//! template folders (shared with TaskRequest) and answers what a running step's
//! template declares (its domain events and their compiled payload schemas). Running tasks never need YAML: their
//! handler, retry and timeout settings were copied onto the step rows at creation.

use crate::template::{EventDeclaration, SharedValidator, TemplateRegistry};
use std::sync::{Arc, RwLock};

/// Shared template registry with step lookups.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    registry: Arc<RwLock<TemplateRegistry>>,
}

impl TemplateCache {
    /// A cache over `registry`.
    pub fn new(registry: TemplateRegistry) -> Self {
        Self {
            registry: Arc::new(RwLock::new(registry)),
        }
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
        let registry = self.registry.read().unwrap_or_else(|p| p.into_inner());
        registry
            .resolve(&format!("{namespace}/{task_name}@{version}"))
            .ok()
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
        let registry = self.registry.read().unwrap_or_else(|p| p.into_inner());
        registry
            .resolve(&format!("{namespace}/{task_name}@{version}"))
            .ok()
            .and_then(|t| t.event_schema(step_name, event))
    }
}
