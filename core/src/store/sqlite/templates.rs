//! Template rows on SQLite: registration (one script) and lookup by name.

use super::{run_script, SqliteStore};
use crate::store::templates::{pick, register_payload, TemplateRow};
use crate::store::{StoreError, TemplateRecord};
use sqlx::Row;

pub(super) async fn register_many(
    store: &SqliteStore,
    templates: Vec<TemplateRecord>,
    now: i64,
) -> Result<(), StoreError> {
    if templates.is_empty() {
        return Ok(());
    }
    let mut conn = store.writer().await?;
    run_script(
        &mut conn,
        store
            .script(include_str!("queries/template/register_many.sql"))
            .bind(register_payload(&templates))
            .bind(now),
    )
    .await?;
    Ok(())
}

pub(super) async fn find(
    store: &SqliteStore,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<TemplateRecord>, StoreError> {
    let rows = store
        .query(include_str!("queries/template/find.sql"))
        .bind(namespace.to_string())
        .bind(name.to_string())
        .fetch_all(&mut *store.reader().await?)
        .await?;
    let rows = rows
        .iter()
        .map(|r| {
            let definition: String = r.try_get("definition")?;
            Ok(TemplateRow {
                record: TemplateRecord {
                    content_hash: r.try_get("content_hash")?,
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    definition: serde_json::from_str(&definition).map_err(|e| StoreError::Corrupt {
                        table: "templates",
                        reason: e.to_string(),
                    })?,
                },
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(pick(rows, version))
}
