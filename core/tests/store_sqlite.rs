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

/// Openers that race on one new file in each round.
const OPENERS: usize = 6;
/// Rounds, each on a fresh file: the race needs the openers to overlap on the first
/// migration, which one round may not show.
const ROUNDS: usize = 15;

/// Several stores opening the same NEW file at once (as the polyglot demo's worker
/// processes do) all open it, and it ends with every migration applied once: the
/// openers that lose the race to apply the first migration run it again and find
/// it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_of_a_new_file_all_succeed() {
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tasker.db").display());
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(OPENERS));
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..OPENERS {
            let (url, start) = (url.clone(), start.clone());
            opening.spawn(async move {
                start.wait().await;
                store::open(&url).await
            });
        }
        let mut stores = Vec::new();
        while let Some(joined) = opening.join_next().await {
            match joined.expect("the opener ran") {
                Ok(s) => stores.push(s),
                Err(e) => panic!("round {round}: a concurrent first open failed: {e}"),
            }
        }
        for s in &stores {
            let status = s.schema_status().await.expect("schema status");
            assert_eq!(status.applied, status.expected, "round {round}: {status:?}");
        }
    }
}
