//! The template registry (stub: being written).

use super::{HandlerLookup, LoadedTemplate, TemplateErrors};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Why a template could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template matches the key.
    #[error("unknown template `{key}`")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The key is not `namespace/name[@version]`.
    #[error("bad template key `{key}`: expected namespace/name[@version]")]
    BadKey {
        /// The key given.
        key: String,
    },
    /// The template failed to load.
    #[error(transparent)]
    Invalid(#[from] TemplateErrors),
}

/// Templates by namespace, name and version.
#[derive(Debug, Default)]
pub struct TemplateRegistry {
    by_key: BTreeMap<(String, String, String), Arc<LoadedTemplate>>,
}

impl TemplateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Loads every `*.yaml`/`*.yml` under `dir`, reporting every problem in every file.
    pub fn load_dir(dir: &Path, handlers: Option<&dyn HandlerLookup>) -> Result<Self, TemplateErrors> {
        let mut reg = Self::new();
        for entry in std::fs::read_dir(dir).map_err(|e| TemplateErrors::single(&dir.display().to_string(), e.to_string()))? {
            let path = entry.map_err(|e| TemplateErrors::single(&dir.display().to_string(), e.to_string()))?.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                reg.insert(super::load_file(&path, handlers)?);
            }
        }
        Ok(reg)
    }
    /// Adds a template, replacing one with the same namespace, name and version.
    pub fn insert(&mut self, t: LoadedTemplate) -> Arc<LoadedTemplate> {
        let key = (t.template.namespace.clone(), t.template.name.clone(), t.template.version.clone());
        let t = Arc::new(t);
        self.by_key.insert(key, t.clone());
        t
    }
    /// Resolves `namespace/name` (highest version) or `namespace/name@version`.
    pub fn resolve(&self, key: &str) -> Result<Arc<LoadedTemplate>, TemplateError> {
        let (ns_name, version) = match key.split_once('@') {
            Some((a, v)) => (a, Some(v)),
            None => (key, None),
        };
        let (ns, name) = ns_name.split_once('/').ok_or_else(|| TemplateError::BadKey { key: key.to_string() })?;
        self.by_key
            .iter()
            .filter(|((n, m, v), _)| n == ns && m == name && version.is_none_or(|want| want == v))
            .map(|(_, t)| t.clone())
            .last()
            .ok_or_else(|| TemplateError::NotFound { key: key.to_string() })
    }
    /// Every template, sorted by namespace, name and version.
    pub fn list(&self) -> Vec<Arc<LoadedTemplate>> {
        self.by_key.values().cloned().collect()
    }
}
