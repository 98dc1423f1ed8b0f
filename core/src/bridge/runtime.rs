//! The process-wide tokio runtime for bindings whose host language has none of
//! its own (Python, Ruby): created on first use, with two worker threads (the
//! handlers run in the host; the runtime only waits on the database and timers).
//! It records the PID that created it: in a child made by `fork()` its threads do
//! not exist, so every call there fails with [`BridgeError::Forked`] instead of
//! hanging. Node hands napi a runtime of its own and does not use this.

use super::BridgeError;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

struct ProcessRuntime {
    runtime: Runtime,
    pid: u32,
}

static RUNTIME: OnceLock<Result<ProcessRuntime, String>> = OnceLock::new();

/// Worker threads of the process runtime.
pub const WORKER_THREADS: usize = 2;

/// The runtime, created on first use; refuses to work in a forked child.
pub fn process_runtime() -> Result<&'static Runtime, BridgeError> {
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
pub fn runtime_created_in() -> Option<u32> {
    match RUNTIME.get() {
        Some(Ok(rt)) => Some(rt.pid),
        _ => None,
    }
}
