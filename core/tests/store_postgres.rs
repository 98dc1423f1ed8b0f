//! The Store conformance suite against the PostgreSQL backend: a fresh database per
//! case (created and dropped by `support::pg`), on `TASKER_TEST_DATABASE_URL` or the
//! local server.

#[macro_use]
mod conformance;
mod support;

use conformance::{Harness, T0};
use tasker_core::clock::ManualClock;
use tasker_core::store::{self, Backend};

async fn postgres() -> Harness {
    let db = support::pg::test_database().await;
    let store = store::open(&db.url).await.expect("open postgres store");
    assert_eq!(store.backend(), Backend::Postgres);
    Harness::new(store, ManualClock::new(T0), Box::new(db))
}

conformance_suite!(postgres);
