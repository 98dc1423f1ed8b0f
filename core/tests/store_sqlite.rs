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
/// processes do) all open it, and it ends with every migration applied: the openers
/// that lose the race to apply the first migration run it again and find it
/// applied. Each opener is a thread with a runtime of its own, released together.
#[test]
fn concurrent_first_opens_of_a_new_file_all_succeed() {
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tasker.db").display());
        let start = std::sync::Arc::new(std::sync::Barrier::new(OPENERS));
        let openers: Vec<_> = (0..OPENERS)
            .map(|_| {
                let (url, start) = (url.clone(), start.clone());
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    start.wait();
                    runtime.block_on(async {
                        let store = store::open(&url).await.map_err(|e| e.to_string())?;
                        let status = store.schema_status().await.map_err(|e| e.to_string())?;
                        store.close().await;
                        Ok::<_, String>(status)
                    })
                })
            })
            .collect();
        for opener in openers {
            match opener.join().expect("the opener did not panic") {
                Ok(status) => assert_eq!(status.applied, status.expected, "round {round}: {status:?}"),
                Err(e) => panic!("round {round}: a concurrent first open failed: {e}"),
            }
        }
    }
}
