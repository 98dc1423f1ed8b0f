//! The HTTP API (axum): what `tasker orchestrator` serves, and what an embedded
//! engine may serve too ([`ApiServer::start`]).
//!
//! | Route | What |
//! |---|---|
//! | `POST /v1/tasks` | create a task (201; 200 with the existing task for a duplicate) |
//! | `GET /v1/tasks` | list tasks (filters `state`, `namespace`; `limit`, `offset`) |
//! | `GET /v1/tasks/{task_uuid}` | a task with its steps |
//! | `POST /v1/tasks/{task_uuid}/cancel` | cancel a task and its unfinished steps |
//! | `GET /v1/tasks/{task_uuid}/steps/{step_uuid}` | a step with its transitions |
//! | `GET /v1/dlq` | list dead-letter entries (filters `status`: open (default), resolved, all; `reason`, `namespace`; `limit`, `offset`) |
//! | `GET /v1/dlq/{entry_id}` | one entry with the snapshot of its task |
//! | `POST /v1/dlq/{entry_id}/resolve` | resolve an entry: retry, resolve or complete one step; the task resumes |
//! | `GET /v1/templates`, `GET /v1/templates/{namespace}/{name}` | templates; one with its DAG as Mermaid |
//! | `GET /health`, `GET /ready`, `GET /metrics` | liveness, readiness, Prometheus metrics |
//! | `GET /openapi.json` | the OpenAPI 3.1 document, generated from this code (utoipa) |
//!
//! One file per area: [`tasks`], [`dlq`], [`templates`], [`health`]; [`error`] (the JSON
//! error body and its stable codes), [`json`] (body extraction, 413 past
//! `api.body_limit_bytes`), [`paging`] (`limit`/`offset` of the lists), [`auth`] (optional bearer tokens on every route but
//! `/health`). Every request is counted and timed in the engine's metrics and runs
//! in an `http_request` span.
//!
//! Adding an area (the DLQ endpoints, for one): write its handlers with
//! `#[utoipa::path]` in a new file and add one `.routes(routes!(...))` line per path
//! to [`router`]'s protected part; they then need a token and appear in
//! `/openapi.json` without further work.

pub mod auth;
pub mod dlq;
pub mod error;
pub mod health;
pub mod json;
pub mod paging;
pub mod tasks;
pub mod templates;

use crate::config::ApiConfig;
use crate::engine::Engine;
use crate::orchestration::admission::is_outage;
use crate::store::StoreError;
use auth::Tokens;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use error::ApiError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tracing::Instrument;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler can reach.
#[derive(Debug)]
pub struct ApiState {
    /// The engine behind the API.
    pub engine: Arc<Engine>,
    /// Accepted bearer tokens.
    pub tokens: Tokens,
    /// The API's settings.
    pub config: ApiConfig,
    openapi: OnceLock<serde_json::Value>,
}

impl ApiState {
    /// Runs a store call through the `database` circuit breaker.
    pub async fn db<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, ApiError> {
        Ok(self.engine.breakers().database.call(is_outage, call).await?)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tasker API",
        description = "Create, watch and cancel Tasker tasks; templates; health, readiness and metrics. \
                       Errors are `{\"error\": {\"code\", \"message\", \"field\"?, \"details\"?, \"retry_after_seconds\"?}}`."
    ),
    tags(
        (name = "tasks", description = "Tasks and their steps"),
        (name = "dlq", description = "The dead-letter queue: stuck tasks held for an operator"),
        (name = "templates", description = "Task templates"),
        (name = "health", description = "Liveness, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document itself.
#[utoipa::path(
    get, path = "/openapi.json", tag = "health",
    responses(
        (status = 200, description = "This OpenAPI document", body = Object),
        (status = 401, description = "Missing or wrong bearer token", body = error::ErrorBody),
    )
)]
async fn openapi_json(State(state): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    Json(state.openapi.get().cloned().unwrap_or_default())
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Counts and times each request, in an `http_request` span.
async fn observe(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("http_request", method = %method, route = %route, status = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let m = state.engine.metrics();
    m.http_requests
        .with_label_values(&[&method, &route, &status.to_string()])
        .inc();
    m.http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The router and the OpenAPI document of every route in it.
pub fn router_with_doc(engine: Arc<Engine>, config: &ApiConfig) -> (Router, utoipa::openapi::OpenApi) {
    let state = Arc::new(ApiState {
        engine,
        tokens: Tokens::new(&config.tokens),
        config: config.clone(),
        openapi: OnceLock::new(),
    });
    let (protected, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tasks::create_task, tasks::list_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::cancel_task))
        .routes(routes!(tasks::get_step))
        .routes(routes!(dlq::list_dlq))
        .routes(routes!(dlq::get_dlq_entry))
        .routes(routes!(dlq::resolve_dlq_entry))
        .routes(routes!(templates::list_templates))
        .routes(routes!(templates::get_template))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let (public, public_doc) = OpenApiRouter::new().routes(routes!(health::health)).split_for_parts();
    // Every route but /health may need a bearer token.
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    doc.merge(public_doc);
    if let Some(item) = doc.paths.paths.get_mut("/health") {
        if let Some(op) = item.get.as_mut() {
            op.security = Some(vec![]);
        }
    }
    let _ = state.openapi.set(serde_json::to_value(&doc).unwrap_or_default());
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let router = Router::new()
        .merge(public)
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .with_state(state);
    (router, doc)
}

/// The router of the API over `engine`.
pub fn router(engine: Arc<Engine>, config: &ApiConfig) -> Router {
    router_with_doc(engine, config).0
}

/// The OpenAPI document as served at `/openapi.json` (without starting anything
/// that needs an engine).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiServeError {
    /// The address is taken or not this machine's.
    #[error("cannot listen on `{bind}`: {reason}")]
    Bind {
        /// The address asked for.
        bind: String,
        /// What the system said.
        reason: String,
    },
}

/// A running API server.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Listens on `config.bind` and serves the API over `engine` until [`ApiServer::stop`].
    pub async fn start(engine: Arc<Engine>, config: &ApiConfig) -> Result<Self, ApiServeError> {
        let listener = tokio::net::TcpListener::bind(&config.bind)
            .await
            .map_err(|e| ApiServeError::Bind {
                bind: config.bind.clone(),
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ApiServeError::Bind {
            bind: config.bind.clone(),
            reason: e.to_string(),
        })?;
        let app = router(engine, config);
        // Small JSON answers go out at once rather than waiting for Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP API stopped with an error");
            }
        });
        tracing::info!(%addr, "HTTP API listening");
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on (the real port when `bind` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl IntoResponse for ApiServeError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
