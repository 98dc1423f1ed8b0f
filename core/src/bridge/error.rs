//! Errors of the bridge, each with a stable `code` that every binding maps to its
//! language's exception class (the table in `proto-contract/README.md`).

use crate::engine::EngineError;
use crate::orchestration::CreateTaskError;
use crate::store::StoreError;

/// What went wrong in a bridge call.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The options are wrong (unknown key, bad URL, unreadable templates).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An argument is wrong (not JSON, not a UUID, a context the schema refuses).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The bridge was shut down.
    #[error("the worker is shut down")]
    WorkerClosed,
    /// The event is not held (never handed out, already completed, released or timed out).
    #[error("unknown step event {0}: it was completed, released or timed out, or never handed out")]
    UnknownEvent(String),
    /// No such task.
    #[error("no task {0}")]
    TaskNotFound(String),
    /// No template with that key.
    #[error("{0}")]
    TemplateNotFound(String),
    /// The task did not settle in time.
    #[error("{0}")]
    WaitTimedOut(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// Too much work queued; retry after `retry_after_ms`.
    #[error("overloaded: {message}")]
    Overloaded {
        /// What is overloaded.
        message: String,
        /// When to try again.
        retry_after_ms: u64,
    },
    /// The bridge was created in a parent process before `fork()`.
    #[error("this Bridge was created in process {created_in} and cannot be used after fork() (now in process {now}); create a new one in the child")]
    Forked {
        /// The creating process.
        created_in: u32,
        /// This process.
        now: u32,
    },
    /// A bug (a Rust panic included).
    #[error("internal error: {0}")]
    Internal(String),
}

impl BridgeError {
    /// The stable code bindings map to exception classes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConfig(_) => "invalid_config",
            Self::InvalidInput(_) => "invalid_input",
            Self::WorkerClosed => "worker_closed",
            Self::UnknownEvent(_) => "unknown_event",
            Self::TaskNotFound(_) => "task_not_found",
            Self::TemplateNotFound(_) => "template_not_found",
            Self::WaitTimedOut(_) => "wait_timed_out",
            Self::Database(_) => "database",
            Self::Overloaded { .. } => "overloaded",
            Self::Forked { .. } => "forked",
            Self::Internal(_) => "internal",
        }
    }

    /// How long to wait before trying again, for errors that say so (`overloaded`).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::Overloaded { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }

    /// Every code, for bindings' tests.
    pub const CODES: [&'static str; 11] = [
        "invalid_config",
        "invalid_input",
        "worker_closed",
        "unknown_event",
        "task_not_found",
        "template_not_found",
        "wait_timed_out",
        "database",
        "overloaded",
        "forked",
        "internal",
    ];

    /// A panic's payload as an internal error.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        Self::Internal(format!(
            "panic in the Rust core: {}",
            crate::worker::handler_dispatch::panic_message(payload)
        ))
    }
}

impl From<StoreError> for BridgeError {
    fn from(e: StoreError) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<EngineError> for BridgeError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::TaskNotFound(t) => Self::TaskNotFound(t.to_string()),
            e @ EngineError::WaitTimedOut { .. } => Self::WaitTimedOut(e.to_string()),
        }
    }
}

impl From<CreateTaskError> for BridgeError {
    fn from(e: CreateTaskError) -> Self {
        match e {
            CreateTaskError::Template(crate::template::TemplateError::NotFound { .. }) => {
                Self::TemplateNotFound(e.to_string())
            }
            CreateTaskError::Overloaded { retry_after_ms, .. } => Self::Overloaded {
                message: e.to_string(),
                retry_after_ms,
            },
            CreateTaskError::Closed => Self::WorkerClosed,
            CreateTaskError::Store(s) => s.into(),
            CreateTaskError::StoreFailed { .. } => Self::Database(e.to_string()),
            other => Self::InvalidInput(other.to_string()),
        }
    }
}
