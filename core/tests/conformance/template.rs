//! Templates in the database: registration (insert when the content hash is new)
//! and lookup ("latest" is the highest semver, exact versions compare as semver).

use super::*;

/// A template record of `conformance/<name>@<version>`, distinguished by `tag`.
fn record(name: &str, version: &str, tag: &str) -> TemplateRecord {
    TemplateRecord {
        content_hash: format!("conformance-template:{name}@{version}:{tag}"),
        namespace: NS.into(),
        name: name.into(),
        version: version.into(),
        definition: json!({"namespace": NS, "name": name, "version": version, "tag": tag, "steps": []}),
    }
}

async fn find(h: &Harness, name: &str, version: Option<&str>) -> Option<TemplateRecord> {
    h.store.template_find(NS, name, version).await.expect("template_find")
}

pub async fn a_registered_template_is_found_with_its_definition(h: Harness) {
    let t = record("registered", "1.0.0", "a");
    h.store
        .template_register_many(vec![t.clone()], h.now())
        .await
        .expect("template_register_many");
    // Registering the same hash again is not an error and changes nothing.
    h.store
        .template_register_many(vec![t.clone(), t.clone()], h.now())
        .await
        .expect("re-register");
    let found = find(&h, "registered", None).await.expect("found");
    assert_eq!(
        (
            found.content_hash.as_str(),
            found.namespace.as_str(),
            found.name.as_str(),
            found.version.as_str()
        ),
        (t.content_hash.as_str(), NS, "registered", "1.0.0")
    );
    assert_eq!(found.definition, t.definition);
    assert_eq!(
        find(&h, "registered", Some("1.0.0")).await.map(|r| r.content_hash),
        Some(t.content_hash)
    );
    // Registering nothing is fine too.
    h.store
        .template_register_many(vec![], h.now())
        .await
        .expect("empty registration");
}

pub async fn latest_is_the_highest_semver_and_exact_versions_match(h: Harness) {
    let versions = ["1.9.9", "1.10.0", "1.2.0"];
    let records: Vec<TemplateRecord> = versions.iter().map(|v| record("versions", v, "a")).collect();
    h.store
        .template_register_many(records, h.now())
        .await
        .expect("template_register_many");
    // String order would say 1.9.9.
    assert_eq!(
        find(&h, "versions", None).await.map(|r| r.version),
        Some("1.10.0".into())
    );
    assert_eq!(
        find(&h, "versions", Some("1.9.9")).await.map(|r| r.version),
        Some("1.9.9".into())
    );
    assert_eq!(
        find(&h, "versions", Some("1.2.0")).await.map(|r| r.version),
        Some("1.2.0".into())
    );
    assert!(find(&h, "versions", Some("2.0.0")).await.is_none());
    assert!(find(&h, "unknown", None).await.is_none());
    assert!(h
        .store
        .template_find("other-namespace", "versions", None)
        .await
        .expect("template_find")
        .is_none());
    // Among rows of one version (the YAML changed without a version bump), the newer registration wins.
    h.clock.advance(1_000);
    let edited = record("versions", "1.10.0", "edited");
    h.store
        .template_register_many(vec![edited.clone()], h.now())
        .await
        .expect("register edited");
    assert_eq!(
        find(&h, "versions", None).await.map(|r| r.content_hash),
        Some(edited.content_hash)
    );
}

pub async fn task_creation_registers_its_template_for_lookup(h: Harness) {
    let task = single(NS);
    h.create_one(task.clone()).await;
    let found = find(&h, "single", None)
        .await
        .expect("template of a created task is found");
    assert_eq!(found.content_hash, task.template.content_hash);
    assert_eq!(found.definition, task.template.definition);
}
