//! From a [`BridgeError`] to its Ruby exception. The classes (`Tasker::Error` and
//! one subclass per error code, each answering `#code`) are defined in Ruby
//! (`lib/tasker/errors.rb`, loaded before this library); here they are looked up
//! by name when an error is raised.

use magnus::prelude::*;
use magnus::{Class, Error, ExceptionClass, RModule, Ruby, Value};
use tasker_core::bridge::BridgeError;

/// The Ruby class name (under `Tasker`) for an error code.
pub fn class_name(code: &str) -> &'static str {
    match code {
        "invalid_config" => "InvalidConfig",
        "invalid_input" => "InvalidInput",
        "worker_closed" => "WorkerClosed",
        "unknown_event" => "UnknownEvent",
        "task_not_found" => "TaskNotFound",
        "template_not_found" => "TemplateNotFound",
        "wait_timed_out" => "WaitTimedOut",
        "database" => "DatabaseError",
        "overloaded" => "Overloaded",
        "forked" => "ForkedProcess",
        _ => "InternalError",
    }
}

fn lookup(ruby: &Ruby, name: &str) -> Result<ExceptionClass, Error> {
    let tasker: RModule = ruby.class_object().const_get("Tasker")?;
    tasker.const_get(name)
}

/// The Ruby exception for a bridge error: `Tasker::<Class>` with the error's
/// message (and, for `Overloaded`, `@retry_after` in seconds). Should the classes
/// be missing (the library required on its own), a `RuntimeError` naming the code.
pub fn to_error(ruby: &Ruby, err: BridgeError) -> Error {
    let code = err.code();
    let retry_after = err.retry_after_ms().map(|ms| ms as f64 / 1000.0);
    match (lookup(ruby, class_name(code)), retry_after) {
        (Ok(class), None) => Error::new(class, err.to_string()),
        (Ok(class), Some(seconds)) => match class.new_instance((err.to_string(),)) {
            Ok(exception) => {
                let set: Result<Value, Error> = exception.funcall("instance_variable_set", ("@retry_after", seconds));
                match set {
                    Ok(_) => Error::from(exception),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        },
        (Err(_), _) => Error::new(ruby.exception_runtime_error(), format!("[{code}] {err}")),
    }
}
