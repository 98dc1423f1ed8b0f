//! Tests of the PostgreSQL test-database helper (`support::pg`). They need a server:
//! `TASKER_TEST_DATABASE_URL`, or the local default; scripts/test provides one.

mod support;

use sqlx::{Connection, PgConnection};
use support::pg::{self, owner_pid, sweep_leftovers, test_database, with_database};

async fn admin() -> PgConnection {
    PgConnection::connect(&pg::admin_url())
        .await
        .expect("connect to the admin database")
}

async fn exists(name: &str) -> bool {
    let mut conn = admin().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("query pg_database");
    n == 1
}

async fn create_raw(name: &str) {
    let mut conn = admin().await;
    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .expect("drop");
    let create = format!("CREATE DATABASE \"{name}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .expect("create");
}

#[tokio::test]
async fn two_databases_are_distinct_exist_and_are_dropped() {
    let a = test_database().await;
    let b = test_database().await;
    assert_ne!(a.name, b.name);
    for db in [&a, &b] {
        assert!(
            db.name.starts_with(&format!("tasker_test_{}_", std::process::id())),
            "{}",
            db.name
        );
        assert!(exists(&db.name).await, "{} should exist", db.name);
        // The URL points at the new database.
        let mut conn = PgConnection::connect(&db.url)
            .await
            .expect("connect to the test database");
        let current: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(current, db.name);
        // An open session does not prevent the drop (WITH (FORCE)); keep it open.
        std::mem::forget(conn);
    }
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    drop(a);
    assert!(!exists(&a_name).await, "{a_name} should be dropped");
    assert!(exists(&b_name).await);
    drop(b);
    assert!(!exists(&b_name).await, "{b_name} should be dropped");
}

#[tokio::test(flavor = "current_thread")]
async fn drop_works_inside_a_current_thread_runtime() {
    let db = test_database().await;
    let name = db.name.clone();
    drop(db);
    assert!(!exists(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creation_succeeds() {
    let dbs = futures::future::join_all((0..8).map(|_| test_database())).await;
    let mut names: Vec<_> = dbs.iter().map(|d| d.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8);
    for n in &names {
        assert!(exists(n).await);
    }
    drop(dbs);
    for n in &names {
        assert!(!exists(n).await, "{n} should be dropped");
    }
}

#[tokio::test]
async fn sweep_drops_dead_owners_and_keeps_live_ones() {
    let dead = "tasker_test_999999999_0_dead"; // above any pid_max
    let live_other = "tasker_test_1_0_live"; // pid 1 always runs
    create_raw(dead).await;
    create_raw(live_other).await;
    // Dropped at the end even if an assertion fails (pid 1 never dies: no sweep would).
    let _live_guard = pg::TestDatabase {
        url: with_database(&pg::admin_url(), live_other),
        name: live_other.to_string(),
        admin_url: pg::admin_url(),
    };
    let mine = test_database().await;

    let dropped = sweep_leftovers(&pg::admin_url()).await.expect("sweep");
    assert!(!exists(dead).await, "the dead pid's database should be swept");
    assert!(
        !dropped.iter().any(|n| n == live_other || *n == mine.name),
        "{dropped:?}"
    );
    assert!(exists(live_other).await, "a running process's database must be kept");
    assert!(exists(&mine.name).await, "this process's database must be kept");
}

#[test]
fn names_and_urls() {
    assert_eq!(owner_pid("tasker_test_123_4_abcd"), Some(123));
    assert_eq!(owner_pid("tasker_test_x_4_abcd"), None);
    assert_eq!(owner_pid("other_123"), None);
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1/postgres?sslmode=disable", "t1"),
        "postgres://u:p@h:1/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    assert_eq!(pg::DEFAULT_ADMIN_URL, "postgres://postgres@127.0.0.1:5432/postgres");
    assert_eq!(pg::PG_TEST_POOL_SIZE, 4);
}
