//! Throwaway PostgreSQL databases for integration tests (see docs/testing.md).
//!
//! `test_database()` creates a fresh database on the server named by
//! `TASKER_TEST_DATABASE_URL` (default [`DEFAULT_ADMIN_URL`]); dropping the returned
//! [`TestDatabase`] drops it. The first call per process also drops leftovers of
//! dead test processes ([`sweep_leftovers`]).
//!
//! Names are `tasker_test_<pid>_<counter>_<random hex>`: the pid tells the sweep
//! whether the owner still runs, the counter and random part keep names unique.
#![allow(dead_code)] // each test binary uses a different part of this module

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Used when `TASKER_TEST_DATABASE_URL` is unset or empty: the local server,
/// password-less login as `postgres`, admin database `postgres`.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Pool size for stores opened on a test database. Keep it small: every test
/// database's pool counts against the server's `max_connections` (100 by default).
pub const PG_TEST_POOL_SIZE: u32 = 4;

/// Every test database's name starts with this.
pub const TEST_DB_PREFIX: &str = "tasker_test_";

/// How often `CREATE DATABASE` is tried when the template is busy.
const CREATE_ATTEMPTS: u32 = 8;

static COUNTER: AtomicU64 = AtomicU64::new(0);
static SWEPT: OnceCell<()> = OnceCell::const_new();

/// A database created for one test. Dropping it drops the database.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database (give it to `store::open`).
    pub url: String,
    /// The database's name.
    pub name: String,
    /// URL of the admin database it was created from.
    pub admin_url: String,
}

/// The admin URL the tests use: `TASKER_TEST_DATABASE_URL`, else [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    match std::env::var("TASKER_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => DEFAULT_ADMIN_URL.to_string(),
    }
}

/// Creates a fresh database and returns it. Panics (with directions) when the server
/// cannot be reached or the database cannot be created.
pub async fn test_database() -> TestDatabase {
    let admin = admin_url();
    SWEPT
        .get_or_init(|| async {
            if let Err(e) = sweep_leftovers(&admin).await {
                eprintln!("tasker test support: sweep of leftover test databases failed: {e}");
            }
        })
        .await;

    let name = format!(
        "{TEST_DB_PREFIX}{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let mut conn = admin_connect(&admin).await;
    let sql = format!("CREATE DATABASE {}", quote_ident(&name));
    let mut attempt = 1;
    loop {
        match sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&mut conn).await {
            Ok(_) => break,
            // 55006 object_in_use: "source database "template1" is being accessed by
            // other users" — a concurrent CREATE DATABASE or a session on template1.
            Err(e) if is_object_in_use(&e) && attempt < CREATE_ATTEMPTS => {
                let backoff = 25 * u64::from(attempt) + u64::from(rand::random::<u8>() % 25);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                attempt += 1;
            }
            Err(e) => panic!("cannot create test database {name} on {}: {e}", redact(&admin)),
        }
    }
    let _ = conn.close().await;
    TestDatabase {
        url: with_database(&admin, &name),
        name,
        admin_url: admin,
    }
}

impl Drop for TestDatabase {
    /// Drops the database from a thread of its own with its own runtime: the test's
    /// runtime may be shutting down (or be a current-thread runtime we must not block).
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build a runtime: {e}"))?;
            rt.block_on(drop_database(&admin, &name)).map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("tasker test support: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "tasker test support: the thread dropping test database {} panicked",
                self.name
            ),
        }
    }
}

/// Drops one database, disconnecting its sessions (`WITH (FORCE)`, PostgreSQL 13+).
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    let result = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    let _ = conn.close().await;
    result.map(|_| ())
}

/// Drops the test databases whose owning process is gone (`tasker_test_<pid>_...`
/// with no `/proc/<pid>`) and returns their names. Databases of running processes
/// (this one, or a test binary running in parallel) are kept. Without `/proc` nothing
/// is dropped. A database that fails to drop is reported on stderr and skipped.
pub async fn sweep_leftovers(admin_url: &str) -> Result<Vec<String>, sqlx::Error> {
    if !std::path::Path::new("/proc/self").exists() {
        return Ok(Vec::new());
    }
    let mut conn = PgConnection::connect(admin_url).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1")
            .bind(TEST_DB_PREFIX)
            .fetch_all(&mut conn)
            .await?;
    let mut dropped = Vec::new();
    for name in names {
        let Some(pid) = owner_pid(&name) else { continue };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name));
        match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
            Ok(_) => dropped.push(name),
            Err(e) => eprintln!("tasker test support: could not drop leftover test database {name}: {e}"),
        }
    }
    let _ = conn.close().await;
    Ok(dropped)
}

/// The pid part of a test database name, if the name has our shape.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(TEST_DB_PREFIX)?.split('_').next()?.parse().ok()
}

/// `url` with its database (path) replaced by `name`; the query string is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{}{}", &base[..authority_end], name, query)
}

async fn admin_connect(admin: &str) -> PgConnection {
    PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to the PostgreSQL admin database {} ({e}).\n\
             Set TASKER_TEST_DATABASE_URL to a server where you may create databases, \
             or run scripts/test, which finds or starts one (docs/testing.md).",
            redact(admin)
        )
    })
}

fn is_object_in_use(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "55006")
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL with its password (if any) replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..scheme_end], &authority[..colon], &rest[at..])
        }
        _ => url.to_string(),
    }
}
