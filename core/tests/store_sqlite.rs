//! The Store conformance suite against the SQLite backend: a fresh database file in
//! a temp dir per case.

#[macro_use]
mod conformance;

use conformance::{Harness, T0};
use tasker_core::clock::ManualClock;
use tasker_core::store::{self, Backend};

async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("tasker.db").display());
    let store = store::open(&url).await.expect("open sqlite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    Harness::new(store, ManualClock::new(T0), Box::new(dir))
}

conformance_suite!(sqlite);
