//! From Rust outcomes to Python: every entry point runs its work through
//! [`blocking`] (GIL released, on the process runtime) or [`guarded`] (quick, GIL
//! held). Both turn a panic into `InternalError` and a [`BridgeError`] into its
//! exception class. Data crosses as JSON text, parsed by Python's `json`.

use crate::errors::to_pyerr;
use crate::runtime;
use pyo3::prelude::*;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tasker_core::bridge::BridgeError;

/// Runs `make(..)`'s future to completion on the process runtime with the GIL
/// released, so other Python threads run while it waits.
pub fn blocking<T, F, Fut>(py: Python<'_>, make: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<T, BridgeError>>,
{
    let outcome = py.detach(move || {
        catch_unwind(AssertUnwindSafe(move || {
            let rt = runtime::get()?;
            rt.block_on(make())
        }))
        .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
    });
    outcome.map_err(|e| to_pyerr(py, e))
}

/// Runs a quick call with the GIL held (no waiting inside), inside the process
/// runtime's context, after the fork check.
pub fn guarded<T>(py: Python<'_>, f: impl FnOnce() -> Result<T, BridgeError>) -> PyResult<T> {
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        let _entered = runtime::get()?.enter();
        f()
    }))
    .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)));
    outcome.map_err(|e| to_pyerr(py, e))
}

/// Runs a call that needs no runtime (log forwarding), turning a panic into
/// `InternalError`.
pub fn plain<T>(py: Python<'_>, f: impl FnOnce() -> Result<T, BridgeError>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
        .map_err(|e| to_pyerr(py, e))
}
