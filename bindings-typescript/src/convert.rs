//! From Rust outcomes to JavaScript: every export runs its work through
//! [`guarded`] (quick, on the JS thread) or [`deferred`] (awaited on the tokio
//! runtime, settling a Promise). Both turn a panic into an `internal` error and a
//! [`BridgeError`] into a coded JS error (`errors.rs`): nothing crosses the
//! boundary as a panic. Data crosses as JSON text, parsed by `JSON.parse`.

use crate::errors::to_napi;
use crate::runtime;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use tasker_core::bridge::BridgeError;

/// Runs a quick call (no waiting inside) in the runtime's context, after the fork check.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, BridgeError>) -> napi::Result<T> {
    catch_unwind(AssertUnwindSafe(move || {
        let _entered = runtime::handle()?.enter();
        f()
    }))
    .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
    .map_err(to_napi)
}

/// Runs a call that needs no runtime (log forwarding), turning a panic into an error.
pub fn plain<T>(f: impl FnOnce() -> Result<T, BridgeError>) -> napi::Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
        .map_err(to_napi)
}

/// Awaits `fut` (on the tokio runtime: the caller is an `async` export), after the
/// fork check; a panic while polling it becomes an `internal` error.
pub async fn deferred<T>(fut: BoxedCall<T>) -> napi::Result<T> {
    runtime::handle().map_err(to_napi)?;
    CatchUnwind { inner: fut }.await.map_err(to_napi)
}

/// A bridge call's future, type-erased where its concrete type is known (so the
/// compiler checks `Send` there, not inside napi's generic glue).
pub type BoxedCall<T> = Pin<Box<dyn Future<Output = Result<T, BridgeError>> + Send + 'static>>;

/// Boxes a bridge call's future.
pub fn call<T, Fut>(fut: Fut) -> BoxedCall<T>
where
    Fut: Future<Output = Result<T, BridgeError>> + Send + 'static,
{
    Box::pin(fut)
}

/// A future that turns a panic of its inner future into `BridgeError::Internal`.
struct CatchUnwind<T> {
    inner: BoxedCall<T>,
}

impl<T> Future for CatchUnwind<T> {
    type Output = Result<T, BridgeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(BridgeError::from_panic(payload))),
        }
    }
}
