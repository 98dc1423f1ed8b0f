//! Python exceptions for the bridge's error codes: `TaskerError` (with a `code`
//! attribute) and one subclass per code. `InvalidInput` is also a `ValueError` and
//! `WaitTimedOut` also a `TimeoutError`; those two are built at module init with a
//! second base, the others with `create_exception!`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::PyTypeInfo;
use tasker_core::bridge::BridgeError;

create_exception!(
    tasker._native,
    TaskerError,
    PyException,
    "Base of every error the Tasker core raises; `code` names the error code."
);
create_exception!(
    tasker._native,
    InvalidConfig,
    TaskerError,
    "The options are wrong (code `invalid_config`)."
);
create_exception!(
    tasker._native,
    WorkerClosed,
    TaskerError,
    "The bridge was shut down (code `worker_closed`)."
);
create_exception!(
    tasker._native,
    UnknownEvent,
    TaskerError,
    "The step event is not held: completed, released, timed out or never handed out (code `unknown_event`)."
);
create_exception!(
    tasker._native,
    TaskNotFound,
    TaskerError,
    "No such task (code `task_not_found`)."
);
create_exception!(
    tasker._native,
    TemplateNotFound,
    TaskerError,
    "No template with that key (code `template_not_found`)."
);
create_exception!(
    tasker._native,
    DatabaseError,
    TaskerError,
    "The database failed (code `database`)."
);
create_exception!(
    tasker._native,
    Overloaded,
    TaskerError,
    "Too much work queued; retry later (code `overloaded`)."
);
create_exception!(
    tasker._native,
    ForkedProcess,
    TaskerError,
    "The object was created before fork(); create a new one in the child (code `forked`)."
);
create_exception!(
    tasker._native,
    InternalError,
    TaskerError,
    "A bug in the core, a panic included (code `internal`)."
);

static INVALID_INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static WAIT_TIMED_OUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `type(name, (TaskerError, extra), {...})`.
fn derived(py: Python<'_>, name: &str, extra: Bound<'_, PyType>, code: &str, doc: &str) -> PyResult<Py<PyType>> {
    let bases = PyTuple::new(py, [TaskerError::type_object(py), extra])?;
    let dict = PyDict::new(py);
    dict.set_item("__module__", "tasker._native")?;
    dict.set_item("__doc__", doc)?;
    dict.set_item("code", code)?;
    let made = PyType::type_object(py).call1((name, bases, dict))?;
    Ok(made.cast_into::<PyType>()?.unbind())
}

fn invalid_input(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID_INPUT
        .get_or_try_init(py, || {
            derived(
                py,
                "InvalidInput",
                PyValueError::type_object(py),
                "invalid_input",
                "An argument is wrong: not JSON, not a UUID, a context the schema refuses (code `invalid_input`).",
            )
        })
        .map(|t| t.bind(py))
}

fn wait_timed_out(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    WAIT_TIMED_OUT
        .get_or_try_init(py, || {
            derived(
                py,
                "WaitTimedOut",
                PyTimeoutError::type_object(py),
                "wait_timed_out",
                "The task did not finish in time (code `wait_timed_out`).",
            )
        })
        .map(|t| t.bind(py))
}

/// The exception class for an error code.
pub fn class_for<'py>(py: Python<'py>, code: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(match code {
        "invalid_config" => InvalidConfig::type_object(py),
        "invalid_input" => invalid_input(py)?.clone(),
        "worker_closed" => WorkerClosed::type_object(py),
        "unknown_event" => UnknownEvent::type_object(py),
        "task_not_found" => TaskNotFound::type_object(py),
        "template_not_found" => TemplateNotFound::type_object(py),
        "wait_timed_out" => wait_timed_out(py)?.clone(),
        "database" => DatabaseError::type_object(py),
        "overloaded" => Overloaded::type_object(py),
        "forked" => ForkedProcess::type_object(py),
        _ => InternalError::type_object(py),
    })
}

/// The Python exception for a bridge error. Every instance has `retryable` (True
/// only for `Overloaded`) and `retry_after` (seconds to wait, or None).
pub fn to_pyerr(py: Python<'_>, err: BridgeError) -> PyErr {
    let retry_after = err.retry_after_ms().map(|ms| ms as f64 / 1000.0);
    let retryable = retry_after.is_some();
    let pyerr = match class_for(py, err.code()) {
        Ok(class) => PyErr::from_type(class, err.to_string()),
        Err(e) => return e,
    };
    let value = pyerr.value(py);
    if let Err(e) = value
        .setattr("retry_after", retry_after)
        .and_then(|_| value.setattr("retryable", retryable))
    {
        return e;
    }
    pyerr
}

/// Adds the exception classes to the module and gives each its `code`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = TaskerError::type_object(py);
    base.setattr("code", "internal")?;
    m.add("TaskerError", base)?;
    for code in BridgeError::CODES {
        let class = class_for(py, code)?;
        class.setattr("code", code)?;
        m.add(class.name()?.to_string(), class)?;
    }
    m.add("ERROR_CODES", BridgeError::CODES.to_vec())?;
    Ok(())
}
