//! Bridge errors as JavaScript errors. The message carries the error code in a
//! fixed prefix, `[tasker:<code>] <message>`, which the TypeScript layer
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
    Error::new(status, format!("{PREFIX}{}] {err}", err.code()))
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
}
