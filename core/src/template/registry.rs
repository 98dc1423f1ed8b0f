//! The template registry (the TemplateCache actor's store): loads a directory of
//! templates, reporting every problem in every file, and resolves
//! `namespace/name` (highest semver) or `namespace/name@version` (exact).

use super::{HandlerLookup, LoadedTemplate, TemplateErrors, TemplateProblem};
use semver::Version;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a template could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template matches the key.
    #[error("unknown template `{key}`; {}", known_hint(.known))]
    NotFound {
        /// The key asked for.
        key: String,
        /// The templates the registry knows in the key's namespace
        /// (`namespace/name@version`), to help the user spot a typo.
        known: Vec<String>,
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

fn known_hint(known: &[String]) -> String {
    if known.is_empty() {
        "no templates are registered in that namespace".to_string()
    } else {
        format!("known in that namespace: {}", known.join(", "))
    }
}

/// The version part of the registry's key: semver-ordered, with the original
/// text as a tie-break (so a template whose version does not parse still has a
/// place, ordered as 0.0.0).
type VersionKey = (Version, String);

fn version_key(v: &str) -> VersionKey {
    (
        Version::parse(v).unwrap_or_else(|_| Version::new(0, 0, 0)),
        v.to_string(),
    )
}

/// Templates by namespace, name and (semver-ordered) version.
#[derive(Debug, Default)]
pub struct TemplateRegistry {
    by_key: BTreeMap<(String, String), BTreeMap<VersionKey, Arc<LoadedTemplate>>>,
}

/// Every `*.yaml` / `*.yml` file under `dir`, recursively, sorted by path.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml")
        {
            out.push(path);
        }
    }
    Ok(())
}

impl TemplateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every `*.yaml`/`*.yml` under `dir` (recursively, in path order),
    /// reporting every problem in every file, plus one problem for each
    /// namespace/name/version defined by two files (naming both).
    pub fn load_dir(
        dir: &Path,
        handlers: Option<&dyn HandlerLookup>,
    ) -> Result<Self, TemplateErrors> {
        let dir_name = dir.display().to_string();
        let mut files = Vec::new();
        yaml_files(dir, &mut files)
            .map_err(|e| TemplateErrors::single(&dir_name, format!("cannot read directory: {e}")))?;
        let mut reg = Self::new();
        let mut problems: Vec<TemplateProblem> = Vec::new();
        for path in files {
            match super::load_file(&path, handlers) {
                Ok(t) => {
                    if let Some(prev) = reg.get_exact(
                        &t.template.namespace,
                        &t.template.name,
                        &t.template.version,
                    ) {
                        problems.push(TemplateProblem {
                            file: t.origin.clone(),
                            step: None,
                            field: None,
                            message: format!(
                                "template {} is also defined in {}",
                                t.template.key(),
                                prev.origin
                            ),
                        });
                    } else {
                        reg.insert(t);
                    }
                }
                Err(e) => problems.extend(e.0),
            }
        }
        if problems.is_empty() {
            Ok(reg)
        } else {
            Err(TemplateErrors(problems))
        }
    }

    /// Adds a template, replacing one with the same namespace, name and version.
    pub fn insert(&mut self, t: LoadedTemplate) -> Arc<LoadedTemplate> {
        let t = Arc::new(t);
        self.by_key
            .entry((t.template.namespace.clone(), t.template.name.clone()))
            .or_default()
            .insert(version_key(&t.template.version), t.clone());
        t
    }

    fn get_exact(&self, ns: &str, name: &str, version: &str) -> Option<&Arc<LoadedTemplate>> {
        self.by_key
            .get(&(ns.to_string(), name.to_string()))?
            .get(&version_key(version))
    }

    /// Resolves `namespace/name` (highest semver version) or
    /// `namespace/name@version` (exactly that version).
    pub fn resolve(&self, key: &str) -> Result<Arc<LoadedTemplate>, TemplateError> {
        let bad = || TemplateError::BadKey {
            key: key.to_string(),
        };
        let (ns_name, version) = match key.split_once('@') {
            Some((a, v)) => (a, Some(v)),
            None => (key, None),
        };
        let (ns, name) = ns_name.split_once('/').ok_or_else(bad)?;
        if ns.is_empty() || name.is_empty() || name.contains('/') {
            return Err(bad());
        }
        let versions = self.by_key.get(&(ns.to_string(), name.to_string()));
        let found = match version {
            None => versions.and_then(|vs| vs.values().next_back()),
            Some(v) => {
                let wanted = Version::parse(v).map_err(|_| bad())?;
                versions.and_then(|vs| {
                    vs.iter()
                        .find(|((parsed, _), _)| *parsed == wanted)
                        .map(|(_, t)| t)
                })
            }
        };
        found.cloned().ok_or_else(|| TemplateError::NotFound {
            key: key.to_string(),
            known: self.known_in(ns),
        })
    }

    /// `namespace/name@version` of every template in namespace `ns`, in order.
    fn known_in(&self, ns: &str) -> Vec<String> {
        self.by_key
            .iter()
            .filter(|((n, _), _)| n == ns)
            .flat_map(|(_, vs)| vs.values().map(|t| t.template.key()))
            .collect()
    }

    /// Every template, sorted by namespace, name and (semver) version.
    pub fn list(&self) -> Vec<Arc<LoadedTemplate>> {
        self.by_key
            .values()
            .flat_map(|vs| vs.values().cloned())
            .collect()
    }
}
