//! Errors from the store, each saying what the caller should do.

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this build understands.
    #[error("unsupported database URL `{url}`: expected sqlite://PATH (or a file path) or postgres://...")]
    UnsupportedUrl {
        /// The URL given.
        url: String,
    },
    /// The database could not be opened or written (a missing folder, no permission,
    /// a read-only file). Fix the path or its permissions and retry.
    #[error("cannot open database `{location}`: {reason}")]
    Open {
        /// Where the database is.
        location: String,
        /// What the driver said.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A uniqueness or reference rule was broken; `constraint` names it.
    #[error("constraint `{constraint}` violated: {message}")]
    Conflict {
        /// Name of the constraint (as named in the migrations).
        constraint: String,
        /// What the driver said.
        message: String,
    },
    /// A value read back from the database could not be decoded (a bug or a foreign write).
    #[error("corrupt row in `{table}`: {reason}")]
    Corrupt {
        /// Table the row came from.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The store was closed; open a new one.
    #[error("the store is closed")]
    Closed,
    /// The database failed; retrying later may work.
    #[error("database error: {0}")]
    Backend(#[source] sqlx::Error),
}

impl StoreError {
    /// A stable code for this error (listed in proto-contract).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedUrl { .. } => "store.unsupported_url",
            Self::Open { .. } => "store.open",
            Self::Migrate(_) => "store.migrate",
            Self::Conflict { .. } => "store.conflict",
            Self::Corrupt { .. } => "store.corrupt",
            Self::Closed => "store.closed",
            Self::Backend(_) => "store.backend",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if let Some(constraint) = db.constraint() {
                return Self::Conflict {
                    constraint: constraint.to_string(),
                    message: db.message().to_string(),
                };
            }
        }
        Self::Backend(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt {
            table: "(json)",
            reason: e.to_string(),
        }
    }
}
