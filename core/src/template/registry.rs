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
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
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
    pub fn load_dir(dir: &Path, handlers: Option<&dyn HandlerLookup>) -> Result<Self, TemplateErrors> {
        let dir_name = dir.display().to_string();
        let mut files = Vec::new();
        yaml_files(dir, &mut files)
            .map_err(|e| TemplateErrors::single(&dir_name, format!("cannot read directory: {e}")))?;
        let mut reg = Self::new();
        let mut problems: Vec<TemplateProblem> = Vec::new();
        for path in files {
            match super::load_file(&path, handlers) {
                Ok(t) => {
                    if let Some(prev) = reg.get_exact(&t.template.namespace, &t.template.name, &t.template.version) {
                        problems.push(TemplateProblem {
                            file: t.origin.clone(),
                            step: None,
                            field: None,
                            message: format!("template {} is also defined in {}", t.template.key(), prev.origin),
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
        self.insert_shared(Arc::new(t))
    }

    /// Adds an already shared template, replacing one with the same key.
    pub fn insert_shared(&mut self, t: Arc<LoadedTemplate>) -> Arc<LoadedTemplate> {
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
        let bad = || TemplateError::BadKey { key: key.to_string() };
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
                versions.and_then(|vs| vs.iter().find(|((parsed, _), _)| *parsed == wanted).map(|(_, t)| t))
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
        self.by_key.values().flat_map(|vs| vs.values().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse_str;

    fn loaded(ns: &str, name: &str, version: &str) -> LoadedTemplate {
        let yaml = format!("namespace: {ns}\nname: {name}\nversion: {version}\nsteps: []\n");
        parse_str(&yaml, &format!("{name}-{version}.yaml"), None).unwrap()
    }

    fn registry(versions: &[&str]) -> TemplateRegistry {
        let mut reg = TemplateRegistry::new();
        for v in versions {
            reg.insert(loaded("ns", "t", v));
        }
        reg
    }

    #[test]
    fn latest_is_the_highest_semver_not_the_highest_string() {
        let reg = registry(&["1.9.9", "1.10.0", "1.2.0"]);
        assert_eq!(reg.resolve("ns/t").unwrap().template.version, "1.10.0");
        let order: Vec<String> = reg.list().iter().map(|t| t.template.version.clone()).collect();
        assert_eq!(order, ["1.2.0", "1.9.9", "1.10.0"]);
    }

    #[test]
    fn a_release_outranks_its_prerelease() {
        let reg = registry(&["2.0.0", "2.0.0-rc.1"]);
        assert_eq!(reg.resolve("ns/t").unwrap().template.version, "2.0.0");
    }

    #[test]
    fn an_exact_version_resolves_to_that_version() {
        let reg = registry(&["1.9.9", "1.10.0", "1.2.0"]);
        assert_eq!(reg.resolve("ns/t@1.2.0").unwrap().template.version, "1.2.0");
        assert_eq!(reg.resolve("ns/t@1.9.9").unwrap().origin, "t-1.9.9.yaml");
    }

    #[test]
    fn an_unknown_template_or_version_is_not_found_and_lists_the_namespace() {
        let mut reg = registry(&["1.0.0"]);
        reg.insert(loaded("other", "x", "1.0.0"));
        match reg.resolve("ns/t@2.0.0") {
            Err(e @ TemplateError::NotFound { .. }) => {
                let text = e.to_string();
                assert!(text.contains("`ns/t@2.0.0`"), "{text}");
                assert!(text.contains("ns/t@1.0.0"), "{text}");
                assert!(!text.contains("other/x"), "{text}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        match reg.resolve("empty/t") {
            Err(TemplateError::NotFound { key, known }) => {
                assert_eq!(key, "empty/t");
                assert!(known.is_empty());
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn malformed_keys_are_bad_keys() {
        let reg = registry(&["1.0.0"]);
        for key in ["t", "/t", "ns/", "ns/t/u", "ns/t@", "ns/t@latest", "ns/t@1.0"] {
            assert!(
                matches!(reg.resolve(key), Err(TemplateError::BadKey { .. })),
                "{key} should be a bad key"
            );
        }
    }

    #[test]
    fn insert_replaces_the_same_version() {
        let mut reg = registry(&["1.0.0"]);
        let mut again = loaded("ns", "t", "1.0.0");
        again.origin = "second.yaml".into();
        reg.insert(again);
        assert_eq!(reg.list().len(), 1);
        assert_eq!(reg.resolve("ns/t").unwrap().origin, "second.yaml");
    }

    #[test]
    fn load_dir_loads_all_seven_examples_without_problems() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));
        let reg = match TemplateRegistry::load_dir(dir, None) {
            Ok(r) => r,
            Err(e) => panic!("examples have problems:\n{e}"),
        };
        let names: Vec<String> = reg.list().iter().map(|t| t.template.key()).collect();
        assert_eq!(
            names,
            [
                "examples/conditional_approval@1.0.0",
                "examples/csv_batch@1.0.0",
                "examples/diamond@1.0.0",
                "examples/linear@1.0.0",
                "examples/mixed_dag@1.0.0",
                "examples/retry@1.0.0",
                "examples/tree@1.0.0",
            ]
        );
        for t in reg.list() {
            assert_eq!(
                t.template.identity_strategy,
                crate::template::IdentityStrategy::AlwaysUnique
            );
            assert!(t.template.description.is_some());
            if t.template
                .steps
                .iter()
                .all(|s| s.step_type == crate::template::StepType::Standard)
            {
                assert!(t.validate_context(&serde_json::json!({"n": 3})).is_ok());
                assert!(t.validate_context(&serde_json::json!({"n": 1001})).is_err());
            }
        }
        let approval = reg.resolve("examples/conditional_approval").unwrap();
        assert!(approval.validate_context(&serde_json::json!({"amount": 250})).is_ok());
        assert!(approval.validate_context(&serde_json::json!({"amount": -1})).is_err());
        let csv = reg.resolve("examples/csv_batch").unwrap();
        assert!(csv.validate_context(&serde_json::json!({"rows": 1000})).is_ok());
        let mixed = reg.resolve("examples/mixed_dag").unwrap();
        assert_eq!(mixed.template.steps.len(), 7);
        let retry = reg.resolve("examples/retry@1.0.0").unwrap();
        assert_eq!(retry.template.step("fetch").unwrap().retry.max_attempts, 3);
        assert_eq!(retry.template.roots().len(), 1);
    }

    #[test]
    fn load_dir_reports_problems_from_every_file_and_duplicates_by_both_names() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "namespace: ns\nname: t\nversion: 1.0.0\nsteps: []\n";
        std::fs::write(dir.path().join("a.yaml"), ok).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.yml"), ok).unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            "namespace: ns\nname: c\nversion: x\nsteps: []\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("d.yaml"), "name: [\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let err = TemplateRegistry::load_dir(dir.path(), None).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        let a = dir.path().join("a.yaml").display().to_string();
        let b = dir.path().join("sub/b.yml").display().to_string();
        let dup = err.0.iter().find(|p| p.file == b).expect("duplicate reported");
        assert!(dup.message.contains(&a) && dup.message.contains("ns/t@1.0.0"), "{dup}");
        assert!(err
            .0
            .iter()
            .any(|p| p.file.ends_with("c.yaml") && p.field.as_deref() == Some("version")));
        assert!(err
            .0
            .iter()
            .any(|p| p.file.ends_with("d.yaml") && p.message.starts_with("malformed YAML")));
    }
}
