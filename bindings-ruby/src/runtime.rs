//! The one tokio runtime of this process, created on first use. It records the
//! PID that created it: in a child made by `fork()` its threads do not exist, so
//! every call there raises `Tasker::ForkedProcess` instead of hanging.

use std::sync::OnceLock;
use tasker_core::bridge::BridgeError;
use tokio::runtime::Runtime;

struct ProcessRuntime {
    runtime: Runtime,
    pid: u32,
}

static RUNTIME: OnceLock<Result<ProcessRuntime, String>> = OnceLock::new();

/// Worker threads: the handlers run in Ruby; the runtime only waits on the
/// database and timers.
const WORKER_THREADS: usize = 2;

/// The runtime, created on first use; refuses to work in a forked child.
pub fn get() -> Result<&'static Runtime, BridgeError> {
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("tasker-rt")
            .enable_all()
            .build()
            .map(|runtime| ProcessRuntime {
                runtime,
                pid: std::process::id(),
            })
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))
    });
    match rt {
        Ok(rt) if rt.pid == std::process::id() => Ok(&rt.runtime),
        Ok(rt) => Err(BridgeError::Forked {
            created_in: rt.pid,
            now: std::process::id(),
        }),
        Err(e) => Err(BridgeError::Internal(e.clone())),
    }
}

/// The PID that created the runtime, when it exists.
pub fn created_in() -> Option<u32> {
    match RUNTIME.get() {
        Some(Ok(rt)) => Some(rt.pid),
        _ => None,
    }
}
