//! Bridge errors as JavaScript errors. The message carries the error code in a
//! fixed prefix, `[tasker:<code>] <message>` (`[tasker:overloaded retry_after_ms=N]
//! <message>` when the core says when to try again), which the TypeScript layer
//! (`ts/errors.ts`) turns into the `TaskerError` subclass for that code, with
//! `.code` set. Codes are `BridgeError::code()` (the table in
//! `proto-contract/README.md`).

use napi::{Error, Status};
use tasker_core::bridge::BridgeError;

/// The prefix every Tasker error message starts with.
pub const PREFIX: &str = "[tasker:";

/// The JavaScript error for a bridge error.
pub fn to_napi(err: BridgeError) -> Error {
    let status = match err {
        BridgeError::InvalidInput(_) | BridgeError::InvalidConfig(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    match err.retry_after_ms() {
        Some(ms) => Error::new(status, format!("{PREFIX}{} retry_after_ms={ms}] {err}", err.code())),
        None => Error::new(status, format!("{PREFIX}{}] {err}", err.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_in_the_message_prefix() {
        for (err, code) in [
            (BridgeError::WorkerClosed, "worker_closed"),
            (BridgeError::InvalidInput("x".into()), "invalid_input"),
            (BridgeError::Internal("boom".into()), "internal"),
        ] {
            let e = to_napi(err);
            assert!(e.reason.starts_with(&format!("{PREFIX}{code}] ")), "{}", e.reason);
        }
    }

    #[test]
    fn an_overloaded_error_carries_its_retry_delay_in_the_prefix() {
        let e = to_napi(BridgeError::Overloaded {
            message: "queue full".into(),
            retry_after_ms: 1500,
        });
        assert!(
            e.reason
                .starts_with(&format!("{PREFIX}overloaded retry_after_ms=1500] ")),
            "{}",
            e.reason
        );
    }
}
