//! Backend-independent halves of the template methods: the JSON payload of
//! [`Store::template_register_many`](super::Store::template_register_many) and the
//! version choice of [`Store::template_find`](super::Store::template_find).
//!
//! The database only returns every registered row of a namespace/name; which one
//! is "latest" is decided here with the `semver` crate (1.10.0 > 1.9.9), never by
//! string order in SQL.

use super::TemplateRecord;
use semver::Version;
use serde_json::{json, Value};

/// The templates as one JSON array (`content_hash`, `namespace`, `name`, `version`,
/// `definition` as JSON text), the same shape task creation uses.
pub fn register_payload(templates: &[TemplateRecord]) -> String {
    let rows: Vec<Value> = templates
        .iter()
        .map(|t| {
            json!({
                "content_hash": t.content_hash, "namespace": t.namespace, "name": t.name,
                "version": t.version, "definition": t.definition.to_string(),
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

/// One registered row: the record and when it was first registered.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    /// The template.
    pub record: TemplateRecord,
    /// When its content hash was first stored.
    pub created_at: i64,
}

/// Picks a template among the rows of one namespace/name.
///
/// - `version: None`: the highest semver version ("latest"); rows whose version does
///   not parse rank below every valid one.
/// - `version: Some(v)`: the row whose version equals `v` as semver (so `1.0.0`
///   finds `1.0.0`, and a non-semver `v` must match the text exactly).
///
/// When several rows share the chosen version (the YAML changed without a version
/// bump), the most recently registered one wins.
pub fn pick(rows: Vec<TemplateRow>, version: Option<&str>) -> Option<TemplateRecord> {
    let parsed = |v: &str| Version::parse(v).ok();
    let candidates = rows.into_iter().filter(|r| match version {
        None => true,
        Some(wanted) => match (parsed(wanted), parsed(&r.record.version)) {
            (Some(w), Some(have)) => w == have,
            _ => wanted == r.record.version,
        },
    });
    candidates
        .max_by(|a, b| {
            let key = |r: &TemplateRow| (parsed(&r.record.version), r.created_at);
            key(a).cmp(&key(b))
        })
        .map(|r| r.record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: &str, hash: &str, created_at: i64) -> TemplateRow {
        TemplateRow {
            record: TemplateRecord {
                content_hash: hash.into(),
                namespace: "ns".into(),
                name: "t".into(),
                version: version.into(),
                definition: json!({}),
            },
            created_at,
        }
    }

    #[test]
    fn latest_is_the_highest_semver_not_the_highest_string() {
        let rows = vec![row("1.9.9", "a", 1), row("1.10.0", "b", 1), row("not-semver", "c", 9)];
        assert_eq!(pick(rows.clone(), None).unwrap().version, "1.10.0");
        assert_eq!(pick(rows.clone(), Some("1.9.9")).unwrap().content_hash, "a");
        assert_eq!(pick(rows.clone(), Some("not-semver")).unwrap().content_hash, "c");
        assert!(pick(rows, Some("2.0.0")).is_none());
    }

    #[test]
    fn among_equal_versions_the_newest_registration_wins() {
        let rows = vec![row("1.0.0", "old", 1), row("1.0.0", "new", 2)];
        assert_eq!(pick(rows, None).unwrap().content_hash, "new");
    }
}
