//! One fresh database per group of runs: a SQLite file in a temporary folder (every
//! worker process of the group opens the same file), or a PostgreSQL database
//! created through an admin URL (`TASKER_TEST_DATABASE_URL`) and dropped afterwards.
//! PostgreSQL databases are named `tasker_xl_<pid>_<n>`; the first creation in a
//! process drops those of processes that no longer run (leftovers of a killed run).

use crate::{Backend, SuiteError};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::Duration;

/// A database that exists until [`Database::drop_database`].
pub struct Database {
    /// What to give workers and the store (`sqlite://...` or `postgres://...`).
    pub url: String,
    place: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

const PREFIX: &str = "tasker_xl_";
static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

impl Database {
    /// Creates an empty database. `admin_url` is required for PostgreSQL.
    pub async fn create(backend: Backend, admin_url: Option<&str>) -> Result<Database, SuiteError> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("tasker-xl-")
                    .tempdir()
                    .map_err(|e| SuiteError::Database(format!("cannot make a temporary folder: {e}")))?;
                Ok(Database {
                    url: format!("sqlite://{}/tasks.db", dir.path().display()),
                    place: Place::Sqlite(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = admin_url.ok_or_else(|| {
                    SuiteError::Database("PostgreSQL needs --postgres-url or TASKER_TEST_DATABASE_URL".into())
                })?;
                let mut sweep_first = false;
                SWEEP.call_once(|| sweep_first = true);
                if sweep_first {
                    sweep_leftovers(admin_url).await;
                }
                let name = format!(
                    "{PREFIX}{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                create_pg(admin_url, &name).await?;
                Ok(Database {
                    url: with_database(admin_url, &name)?,
                    place: Place::Postgres {
                        admin_url: admin_url.to_string(),
                        name,
                    },
                })
            }
        }
    }

    /// Deletes the database (the folder of a SQLite file; `DROP DATABASE ... WITH
    /// (FORCE)` on PostgreSQL). Failures are printed, not raised.
    pub async fn drop_database(self) {
        match self.place {
            Place::Sqlite(dir) => drop(dir),
            Place::Postgres { admin_url, name } => {
                if let Err(e) = drop_pg(&admin_url, &name).await {
                    eprintln!("warning: could not drop database {name}: {e}");
                }
            }
        }
    }
}

/// `admin_url` with its database name replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> Result<String, SuiteError> {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let slash = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..slash]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}

async fn admin(admin_url: &str) -> Result<PgConnection, SuiteError> {
    PgConnection::connect(admin_url)
        .await
        .map_err(|e| SuiteError::Database(format!("cannot connect to {admin_url}: {e}")))
}

async fn create_pg(admin_url: &str, name: &str) -> Result<(), SuiteError> {
    let mut conn = admin(admin_url).await?;
    // Concurrent CREATE DATABASE calls can collide on template1: retry those.
    let mut attempt = 0;
    loop {
        // `name` is ours (prefix, pid, counter): nothing from outside goes into the SQL.
        match sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 8 && e.to_string().contains("being accessed by other users") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(SuiteError::Database(format!("CREATE DATABASE {name}: {e}"))),
        }
    }
}

async fn drop_pg(admin_url: &str, name: &str) -> Result<(), SuiteError> {
    let mut conn = admin(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| SuiteError::Database(e.to_string()))?;
    Ok(())
}

/// Drops `tasker_xl_<pid>_*` databases whose process is gone (Linux: no `/proc/<pid>`).
async fn sweep_leftovers(admin_url: &str) {
    let Ok(mut conn) = admin(admin_url).await else { return };
    let Ok(rows) = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'tasker\\_xl\\_%'")
        .fetch_all(&mut conn)
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>("datname") else {
            continue;
        };
        let pid = name[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = drop_pg(admin_url, &name).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_admin_urls() {
        let u = |s: &str| with_database(s, "tasker_xl_1_0").unwrap();
        assert_eq!(
            u("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/tasker_xl_1_0"
        );
        assert_eq!(
            u("postgres://u:p@h/db?sslmode=disable"),
            "postgres://u:p@h/tasker_xl_1_0?sslmode=disable"
        );
        assert_eq!(u("postgres://h:5432"), "postgres://h:5432/tasker_xl_1_0");
    }
}
