//! Template rows on PostgreSQL: registration and lookup by name.

use super::{PgStore, RunOnStore};
use crate::store::templates::{pick, register_payload, TemplateRow};
use crate::store::{StoreError, TemplateRecord};
use sqlx::Row;

pub(super) async fn register_many(store: &PgStore, templates: Vec<TemplateRecord>, now: i64) -> Result<(), StoreError> {
    if templates.is_empty() {
        return Ok(());
    }
    store
        .query(include_str!("queries/template/register_many.sql"))
        .bind(register_payload(&templates))
        .bind(now)
        .execute_on(store)
        .await?;
    Ok(())
}

pub(super) async fn find(
    store: &PgStore,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Option<TemplateRecord>, StoreError> {
    let rows = store
        .query(include_str!("queries/template/find.sql"))
        .bind(namespace.to_string())
        .bind(name.to_string())
        .fetch_all_on(store)
        .await?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok(TemplateRow {
                record: TemplateRecord {
                    content_hash: r.try_get("content_hash")?,
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    definition: r.try_get("definition")?,
                },
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(pick(rows, version))
}
