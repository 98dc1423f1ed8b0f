//! The one tokio runtime of this process. It is built when the addon loads and
//! handed to napi (`create_custom_tokio_runtime`), so every `async` export runs
//! on it and its Promise settles from it. The PID that loaded the addon is
//! recorded: a process that inherited the addon through `fork()` has none of the
//! runtime's threads, so every call there fails with `forked` instead of hanging.

use std::sync::OnceLock;
use tasker_core::bridge::BridgeError;
use tokio::runtime::Handle;

/// Worker threads: the handlers run in JavaScript; the runtime only waits on the
/// database and timers and encodes JSON.
const WORKER_THREADS: usize = 2;

struct Loaded {
    handle: Handle,
    pid: u32,
}

static RUNTIME: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// Builds the runtime and hands it to napi. Called once, from the module's init.
pub fn install() {
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("tasker-rt")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        let handle = runtime.handle().clone();
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
        Ok(Loaded {
            handle,
            pid: std::process::id(),
        })
    });
}

/// The runtime's handle, after the fork check.
pub fn handle() -> Result<&'static Handle, BridgeError> {
    match RUNTIME.get() {
        Some(Ok(rt)) if rt.pid == std::process::id() => Ok(&rt.handle),
        Some(Ok(rt)) => Err(BridgeError::Forked {
            created_in: rt.pid,
            now: std::process::id(),
        }),
        Some(Err(e)) => Err(BridgeError::Internal(e.clone())),
        None => Err(BridgeError::Internal(
            "the addon's tokio runtime was not installed".into(),
        )),
    }
}

/// The PID that loaded the addon.
pub fn created_in() -> Option<u32> {
    match RUNTIME.get() {
        Some(Ok(rt)) => Some(rt.pid),
        _ => None,
    }
}
