//! `/health` (the process is up; never needs a token), `/ready` (the database
//! answers, its schema is current, every circuit breaker is closed) and `/metrics`
//! (Prometheus text).

use super::ApiState;
use crate::breaker::BreakerState;
use crate::orchestration::admission::is_outage;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The answer of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
}

/// One readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub message: String,
}

/// One circuit breaker's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakerStatus {
    /// `database` or `ffi_completion`.
    pub name: String,
    /// Its state.
    pub state: BreakerState,
}

/// The answer of `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// True when every check passed (status 200; otherwise 503).
    pub ready: bool,
    /// The database answered.
    pub database: Check,
    /// Its schema has every migration this build knows.
    pub migrations: Check,
    /// Every breaker, with its state; any not closed makes the process not ready.
    pub breakers: Vec<BreakerStatus>,
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/health", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse))
)]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".into() })
}

/// Readiness: the database answers, its migrations are current and the breakers are closed.
#[utoipa::path(
    get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = ReadyResponse),
        (status = 401, description = "Missing or wrong bearer token", body = super::error::ErrorBody),
        (status = 503, description = "Not ready", body = ReadyResponse),
    )
)]
pub async fn ready(State(state): State<Arc<ApiState>>) -> Response {
    let engine = &state.engine;
    let probe = engine
        .breakers()
        .database
        .call(is_outage, engine.store().schema_status())
        .await;
    let (database, migrations) = match probe {
        Ok(status) => (
            Check {
                ok: true,
                message: format!("{:?} answered", engine.store().backend()).to_lowercase(),
            },
            Check {
                ok: status.is_current(),
                message: format!("applied {}, expected {}", status.applied, status.expected),
            },
        ),
        Err(e) => (
            Check {
                ok: false,
                message: e.to_string(),
            },
            Check {
                ok: false,
                message: "unknown: the database did not answer".into(),
            },
        ),
    };
    let breakers: Vec<BreakerStatus> = engine
        .breakers()
        .all()
        .iter()
        .map(|b| BreakerStatus {
            name: b.name().to_string(),
            state: b.state(),
        })
        .collect();
    let ready = database.ok && migrations.ok && breakers.iter().all(|b| b.state == BreakerState::Closed);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(ReadyResponse {
            ready,
            database,
            migrations,
            breakers,
        }),
    )
        .into_response()
}

/// The engine's metrics in the Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong bearer token", body = super::error::ErrorBody),
    )
)]
pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.engine.metrics().render(),
    )
        .into_response()
}
