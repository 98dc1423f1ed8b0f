//! From Rust outcomes to Ruby: every entry point runs its work through
//! [`blocking`] / [`interruptible`] (GVL released, on the process runtime) or
//! [`guarded`] (quick, GVL held). All of them turn a panic into
//! `Tasker::InternalError` and a [`BridgeError`] into its exception class; no
//! panic and no Ruby exception ever unwinds across a C frame.
//!
//! Releasing the GVL uses `rb_nogvl` with `RB_NOGVL_INTR_FAIL` (magnus has no
//! wrapper for it). With that flag Ruby never raises from inside the call: when
//! an interrupt (Thread#raise, Thread#kill, a signal for the main thread) is
//! already pending, the function is not run at all, and we let Ruby handle the
//! interrupt through `rb_thread_check_ints` under `rb_protect`, then try again.
//! Calls that are safe to abandon halfway ([`interruptible`]: polling and waiting)
//! also get an unblocking function, so an interrupt stops the wait at once
//! instead of after the timeout.

use crate::errors::to_error;
use crate::runtime;
use magnus::{Error, Ruby};
use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tasker_core::bridge::BridgeError;
use tokio::sync::Notify;

/// Woken by Ruby's unblocking function when it wants the thread back.
struct Cancel {
    notify: Notify,
}

/// Ruby's unblocking function: wakes the waiting future (`notify_one` keeps a
/// permit when nobody waits yet, so an early wake-up is not lost). No
/// allocation, no Ruby call.
unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` points at the `Cancel` on the stack of `nogvl`, which lives
    // until `rb_nogvl` returns; Ruby clears the unblocking function before that.
    let cancel = unsafe { &*(data as *const Cancel) };
    cancel.notify.notify_one();
}

/// Runs `f` on this thread with the GVL released. `None` when Ruby did not run it
/// because an interrupt was pending. `f` must not touch any Ruby object; a panic
/// inside is caught on this side of the C frame and becomes an internal error.
fn nogvl<T, F>(f: F, with_unblock: bool) -> Option<Result<T, BridgeError>>
where
    F: FnOnce(&Cancel) -> Result<T, BridgeError>,
{
    type R<T> = Result<T, BridgeError>;
    struct Payload<'a, F, R> {
        f: Option<F>,
        cancel: &'a Cancel,
        out: Option<std::thread::Result<R>>,
    }
    unsafe extern "C" fn trampoline<F: FnOnce(&Cancel) -> R, R>(data: *mut c_void) -> *mut c_void {
        // SAFETY: `data` is the `Payload` below, alive for the whole call.
        let payload = unsafe { &mut *(data as *mut Payload<'_, F, R>) };
        if let Some(f) = payload.f.take() {
            let cancel = payload.cancel;
            payload.out = Some(catch_unwind(AssertUnwindSafe(move || f(cancel))));
        }
        std::ptr::null_mut()
    }
    let cancel = Cancel { notify: Notify::new() };
    let mut payload = Payload {
        f: Some(f),
        cancel: &cancel,
        out: None,
    };
    let ubf: rb_sys::rb_unblock_function_t = if with_unblock { Some(unblock) } else { None };
    // SAFETY: both pointers outlive the call; the trampoline never unwinds (it
    // catches panics) and touches no Ruby object; with RB_NOGVL_INTR_FAIL Ruby
    // raises nothing from inside, so nothing unwinds through this frame.
    unsafe {
        rb_sys::rb_nogvl(
            Some(trampoline::<F, R<T>>),
            &mut payload as *mut Payload<'_, F, R<T>> as *mut c_void,
            ubf,
            &cancel as *const Cancel as *mut c_void,
            rb_sys::RB_NOGVL_INTR_FAIL as i32,
        );
    }
    payload
        .out
        .map(|out| out.unwrap_or_else(|panic| Err(BridgeError::from_panic(panic))))
}

fn run_on_runtime<T, Fut>(fut: Fut) -> Result<T, BridgeError>
where
    Fut: Future<Output = Result<T, BridgeError>>,
{
    catch_unwind(AssertUnwindSafe(move || runtime::get()?.block_on(fut)))
        .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
}

/// Runs `make()`'s future to completion on the process runtime with the GVL
/// released, so other Ruby threads run while it waits. Not abandoned halfway:
/// an interrupt arriving meanwhile is handled when it returns.
pub fn blocking<T, F, Fut>(ruby: &Ruby, make: F) -> Result<T, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, BridgeError>>,
{
    let mut make = Some(make);
    for _ in 0..REFUSALS_BEFORE_HOLDING_THE_GVL {
        let outcome = nogvl(
            |_| match make.take() {
                Some(make) => run_on_runtime(make()),
                None => Err(BridgeError::Internal("blocking call made twice".into())),
            },
            false,
        );
        match outcome {
            Some(result) => return result.map_err(|e| to_error(ruby, e)),
            // An interrupt was pending: let Ruby raise it (or run a trap), then go on.
            None => ruby.thread_check_ints()?,
        }
    }
    // Ruby kept refusing to release the GVL (an interrupt it neither delivers
    // nor clears): do the work with the GVL held rather than spin.
    match make.take() {
        Some(make) => run_on_runtime(make()).map_err(|e| to_error(ruby, e)),
        None => Err(to_error(ruby, BridgeError::Internal("blocking call made twice".into()))),
    }
}

/// How many times [`blocking`] lets Ruby handle a pending interrupt and asks
/// again for the GVL to be released before it gives up releasing it.
const REFUSALS_BEFORE_HOLDING_THE_GVL: usize = 100;

/// Like [`blocking`], for calls that are safe to abandon while they wait (a poll,
/// a wait for a task): an interrupt stops the wait at once. `Ok(None)` when the
/// wait was interrupted and Ruby raised nothing (a signal trap ran, say); the
/// caller decides whether to wait again.
pub fn interruptible<T, F, Fut>(ruby: &Ruby, make: F) -> Result<Option<T>, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, BridgeError>>,
{
    let outcome = nogvl(
        |cancel| {
            let fut = make();
            run_on_runtime(async move {
                tokio::select! {
                    biased;
                    _ = cancel.notify.notified() => Ok(None),
                    r = fut => r.map(Some),
                }
            })
        },
        true,
    );
    match outcome {
        Some(Ok(Some(v))) => Ok(Some(v)),
        Some(Err(e)) => Err(to_error(ruby, e)),
        Some(Ok(None)) | None => {
            ruby.thread_check_ints()?;
            Ok(None)
        }
    }
}

/// Runs a quick call with the GVL held (no
/// waiting inside), inside the process runtime's context, after the fork check.
pub fn guarded<T>(ruby: &Ruby, f: impl FnOnce() -> Result<T, BridgeError>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(move || {
        let _entered = runtime::get()?.enter();
        f()
    }))
    .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
    .map_err(|e| to_error(ruby, e))
}

/// Runs a call that needs no runtime (log forwarding), turning a panic into
/// `Tasker::InternalError`.
pub fn plain<T>(ruby: &Ruby, f: impl FnOnce() -> Result<T, BridgeError>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(BridgeError::from_panic(payload)))
        .map_err(|e| to_error(ruby, e))
}
