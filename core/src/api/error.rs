//! API errors: every failure is a JSON body `{"error": {"code", "message", "field"?,
//! "details"?, "retry_after_seconds"?}}` with a stable `code` that clients may match
//! on (the table in the README's API section), and the HTTP status that goes with it.

use crate::breaker::{BreakerOpen, GuardedError};
use crate::orchestration::CreateTaskError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for people and programs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `bad_request`, `invalid_parameter`, `invalid_body`,
    /// `unsupported_media_type`, `payload_too_large`, `unauthorized`, `not_found`,
    /// `method_not_allowed`, `task_not_found`, `step_not_found`, `template_not_found`, `invalid_context`,
    /// `idempotency_key_required`, `task_finished`, `overloaded`, `unavailable`,
    /// `database`, `internal`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The request field at fault (a JSON path for body fields, the name of a query
    /// or path parameter), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem, when there are several (the input schema's errors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// For `overloaded` and `unavailable`: when to try again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// An error the API answers with.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                field: None,
                details: vec![],
                retry_after_seconds: None,
            },
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.detail.field = Some(field.into());
        self
    }

    /// Adds the individual problems.
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.detail.details = details;
        self
    }

    /// Asks the client to come back after `ms` (rounded up to whole seconds).
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.detail.retry_after_seconds = Some(ms.div_ceil(1000).max(1));
        self
    }

    /// 400 `invalid_parameter` for a query or path parameter.
    pub fn invalid_parameter(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).field(field)
    }

    /// 404 with a code naming what was not found.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.detail.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.detail.retry_after_seconds;
        let mut response = (self.status, axum::Json(ErrorBody { error: self.detail })).into_response();
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "database error while answering a request");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "database", e.to_string())
    }
}

impl From<BreakerOpen> for ApiError {
    fn from(open: BreakerOpen) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the database is unavailable: {open}"),
        )
        .retry_after_ms(open.retry_after_ms)
    }
}

impl From<GuardedError<StoreError>> for ApiError {
    fn from(e: GuardedError<StoreError>) -> Self {
        match e {
            GuardedError::Open(open) => open.into(),
            GuardedError::TimedOut { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()).retry_after_ms(1000)
            }
            GuardedError::Failed(e) => e.into(),
        }
    }
}

impl From<CreateTaskError> for ApiError {
    fn from(e: CreateTaskError) -> Self {
        use crate::template::TemplateError;
        let message = e.to_string();
        match e {
            CreateTaskError::Template(TemplateError::NotFound { .. }) => {
                Self::not_found("template_not_found", message).field("name")
            }
            CreateTaskError::Template(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message),
            CreateTaskError::InvalidContext { template, errors } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_context",
                format!("the context does not match the input schema of `{template}`"),
            )
            .field("context")
            .details(errors),
            CreateTaskError::IdempotencyKeyRequired { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_required", message)
                    .field("idempotency_key")
            }
            CreateTaskError::Overloaded { retry_after_ms, .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message).retry_after_ms(retry_after_ms)
            }
            CreateTaskError::Closed => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message).retry_after_ms(1000)
            }
            CreateTaskError::Store(s) => s.into(),
            CreateTaskError::StoreFailed { .. } => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "database", message),
        }
    }
}

#[cfg(test)]
impl ApiError {
    /// The field the error names (tests).
    pub fn detail_field(&self) -> Option<&str> {
        self.detail.field.as_deref()
    }
}
