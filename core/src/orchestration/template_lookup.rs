//! Templates registered in the database: what `tasker orchestrator --templates`
//! and the bindings' `templates` option write, and how clients that have no YAML
//! (`tasker task create`, a binding's `create_task`) find a template by key.

use crate::store::{SharedStore, StoreError, TemplateRecord};
use crate::template::{LoadedTemplate, TaskTemplate, TemplateError, TemplateRegistry};
use std::sync::Arc;

/// A registered template could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum TemplateLookupError {
    /// The key is not `namespace/name[@version]`.
    #[error(transparent)]
    BadKey(TemplateError),
    /// The stored definition no longer loads.
    #[error("template `{key}` in the database is unreadable: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What failed.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rows that register every template of `registry`.
pub fn template_records(registry: &TemplateRegistry) -> Vec<TemplateRecord> {
    registry
        .list()
        .iter()
        .map(|t| TemplateRecord {
            content_hash: t.content_hash.clone(),
            namespace: t.template.namespace.clone(),
            name: t.template.name.clone(),
            version: t.template.version.clone(),
            definition: t.definition_json(),
        })
        .collect()
}

/// The template `namespace/name[@version]` names, as registered in the database
/// (the highest version when none is given); None when none is registered.
pub async fn registered_template(
    store: &SharedStore,
    key: &str,
) -> Result<Option<Arc<LoadedTemplate>>, TemplateLookupError> {
    let bad_key = || TemplateLookupError::BadKey(TemplateError::BadKey { key: key.to_string() });
    let (ns_name, version) = match key.split_once('@') {
        Some((a, v)) => (a, Some(v)),
        None => (key, None),
    };
    let (namespace, name) = ns_name.split_once('/').ok_or_else(bad_key)?;
    if namespace.is_empty() || name.is_empty() || name.contains('/') || version.is_some_and(str::is_empty) {
        return Err(bad_key());
    }
    let Some(record) = store.template_find(namespace, name, version).await? else {
        return Ok(None);
    };
    let corrupt = |e: &dyn std::fmt::Display| TemplateLookupError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    };
    let origin = format!("database (content hash {})", record.content_hash);
    let template: TaskTemplate = serde_json::from_value(record.definition).map_err(|e| corrupt(&e))?;
    let mut loaded = LoadedTemplate::from_template(template, &origin).map_err(|e| corrupt(&e))?;
    // The registered hash is the template's identity: tasks share its row.
    loaded.content_hash = record.content_hash;
    Ok(Some(Arc::new(loaded)))
}

/// The template a key names: from `registry` (templates this process loaded) first,
/// else as registered in the database. None when neither knows it.
pub async fn resolve_template(
    registry: &std::sync::RwLock<TemplateRegistry>,
    store: &SharedStore,
    key: &str,
) -> Result<Option<Arc<LoadedTemplate>>, TemplateLookupError> {
    let loaded = match registry.read() {
        Ok(registry) => registry.resolve(key),
        Err(poisoned) => poisoned.into_inner().resolve(key),
    };
    match loaded {
        Ok(t) => Ok(Some(t)),
        Err(TemplateError::BadKey { .. }) => Err(TemplateLookupError::BadKey(TemplateError::BadKey {
            key: key.to_string(),
        })),
        Err(_) => registered_template(store, key).await,
    }
}
