//! A fresh store on either backend, for suites whose every case runs once per
//! backend (engine, API): a temp SQLite file, or a fresh PostgreSQL database.

#![allow(dead_code)] // each test binary uses a different part of this module

use tasker_core::store::{self, SharedStore};

/// A fresh store for one test; `_guard` keeps its database alive.
pub struct Env {
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
    pub store: SharedStore,
    pub url: String,
}

/// A new SQLite file in a temp folder (`file` names it).
pub async fn sqlite_env(file: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/{file}", dir.path().display());
    let store = store::open(&url).await.unwrap();
    Env {
        _guard: Box::new(dir),
        store,
        url,
    }
}

/// A new PostgreSQL database (dropped with the guard).
pub async fn postgres_env() -> Env {
    let db = super::pg::test_database().await;
    let url = db.url.clone();
    let store = store::open(&url).await.unwrap();
    Env {
        _guard: Box::new(db),
        store,
        url,
    }
}

/// `per_backend!(case, …)`: each `async fn case(env: Env)` of the calling file becomes
/// one test in `mod sqlite` and one in `mod postgres` (the file defines `sqlite_env()`
/// and has `postgres_env` in scope), so a failure names the case and the backend.
#[macro_export]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sqlite_env().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::postgres_env().await).await;
                }
            )*
        }
    };
}
