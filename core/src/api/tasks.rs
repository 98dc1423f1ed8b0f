//! `/v1/tasks`: create, list, show and cancel tasks, and show a step with its audit
//! trail. Creation goes through the engine's admission (backpressure) and
//! TaskRequest's queue; reads and the cancel go to the store through the `database`
//! circuit breaker.

use super::error::{ApiError, ErrorBody};
use super::json::{JsonBody, OptionalJsonBody};
use super::ApiState;
use crate::orchestration::task_request::{TaskSubmission, TemplateRef};
use crate::orchestration::template_lookup::{resolve_template, TemplateLookupError};
use crate::state::TaskState;
use crate::store::{StepView, TaskCancelOutcome, TaskListParams, TaskSummary, TaskView, TransitionRecord};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A request to create a task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// The template's namespace.
    pub namespace: String,
    /// The template's name.
    pub name: String,
    /// Exact template version (semver); the highest registered version when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// The task context, checked against the template's input schema (default `{}`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub context: Value,
    /// Makes a retried request safe: the same key returns the task it created first.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Links the task to the caller's traces; a new one is made when absent.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// The answer to a creation: 201 for a new task, 200 for the existing task a
/// duplicate (same idempotency key, or same identity) refers to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskCreatedResponse {
    /// The task.
    pub task_uuid: Uuid,
    /// False when the request matched an existing task.
    pub created: bool,
    /// The task's state.
    pub state: TaskState,
    /// Namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
}

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks, newest first.
    pub tasks: Vec<TaskSummary>,
    /// The page size asked for.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
    /// The `offset` of the next page, when this page is full.
    pub next_offset: Option<u32>,
}

/// Filters and paging of `GET /v1/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it field by field
pub struct ListQuery {
    /// Only tasks in this state.
    state: Option<TaskState>,
    /// Only tasks of this namespace.
    namespace: Option<String>,
    /// Page size (default 100, at most `api.max_page_size`).
    limit: Option<u32>,
    /// Rows to skip (default 0).
    offset: Option<u32>,
}

/// An optional body of a cancel request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why; recorded in the audit rows.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A cancelled task.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResponse {
    /// The task.
    pub task_uuid: Uuid,
    /// Now `cancelled`.
    pub state: TaskState,
    /// Steps moved to `cancelled` with it.
    pub steps_cancelled: u32,
}

/// A step with its audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepDetail {
    /// Its task.
    pub task_uuid: Uuid,
    /// The step.
    pub step: StepView,
    /// Its state changes, oldest first.
    pub transitions: Vec<TransitionRecord>,
}

fn parse_uuid(field: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::from_str(s).map_err(|_| ApiError::invalid_parameter(field, format!("`{s}` is not a UUID")))
}

fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.contains('/') || value.contains('@') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("`{field}` must be non-empty and contain neither `/` nor `@`"),
        )
        .field(field));
    }
    Ok(())
}

/// Create a task.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "Task created", body = TaskCreatedResponse),
        (status = 200, description = "A duplicate: the existing task", body = TaskCreatedResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown template", body = ErrorBody),
        (status = 413, description = "Body over api.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body, or a context the input schema refuses", body = ErrorBody),
        (status = 503, description = "Overloaded or database unavailable; see Retry-After", body = ErrorBody),
    )
)]
pub async fn create_task(
    State(state): State<Arc<ApiState>>,
    JsonBody(req): JsonBody<CreateTaskRequest>,
) -> Result<Response, ApiError> {
    check_name("namespace", &req.namespace)?;
    check_name("name", &req.name)?;
    let key = match &req.version {
        Some(v) => format!("{}/{}@{v}", req.namespace, req.name),
        None => format!("{}/{}", req.namespace, req.name),
    };
    let engine = &state.engine;
    let template = match resolve_template(&engine.templates().registry(), engine.store(), &key).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(ApiError::not_found("template_not_found", format!("unknown template `{key}`")).field("name"))
        }
        Err(TemplateLookupError::BadKey(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("`{key}` is not namespace/name[@semver]"),
            )
            .field("version"))
        }
        Err(TemplateLookupError::Store(e)) => return Err(e.into()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            ))
        }
    };
    let (name, version) = (template.template.name.clone(), template.template.version.clone());
    // The correlation id is made here when the caller has none, so that this
    // request's span and log lines carry the one the task will keep.
    let correlation_id = req.correlation_id.unwrap_or_else(Uuid::now_v7);
    let mut submission = TaskSubmission::new(TemplateRef::Loaded(template), req.context);
    submission.idempotency_key = req.idempotency_key;
    submission.correlation_id = Some(correlation_id);
    let span = tracing::info_span!("task.submit", correlation_id = %correlation_id, template = %key);
    let created = engine.try_submit(submission).instrument(span).await?;
    tracing::info!(task_uuid = %created.task_uuid, correlation_id = %correlation_id, created = created.created,
        "task submitted over HTTP");
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/tasks/{}", created.task_uuid);
    let body = TaskCreatedResponse {
        task_uuid: created.task_uuid,
        created: created.created,
        state: created.state,
        namespace: created.namespace,
        name,
        version,
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// List tasks, newest first.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "A bad filter or page", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<TaskPage>, ApiError> {
    let mut params = TaskListParams::default();
    for (key, value) in &query {
        match key.as_str() {
            "state" => {
                params.state =
                    Some(TaskState::from_str(value).map_err(|e| ApiError::invalid_parameter("state", e.to_string()))?)
            }
            "namespace" => params.namespace = Some(value.clone()),
            "limit" => params.limit = super::paging::parse("limit", value)?,
            "offset" => params.offset = super::paging::parse("offset", value)?,
            other => {
                return Err(ApiError::invalid_parameter(
                    other,
                    format!("unknown parameter `{other}` (expected state, namespace, limit, offset)"),
                ))
            }
        }
    }
    super::paging::check_limit(params.limit, state.config.max_page_size, "tasks")?;
    let (limit, offset) = (params.limit, params.offset);
    let tasks = state.db(state.engine.store().task_list(params)).await?;
    let next_offset = super::paging::next_offset(tasks.len(), limit, offset);
    Ok(Json(TaskPage {
        tasks,
        limit,
        offset,
        next_offset,
    }))
}

/// A task with its steps.
#[utoipa::path(
    get, path = "/v1/tasks/{task_uuid}", tag = "tasks",
    params(("task_uuid" = Uuid, Path, description = "The task")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<Arc<ApiState>>,
    Path(task_uuid): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    state
        .db(state.engine.store().task_get(task_uuid))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("task_not_found", format!("no task {task_uuid}")))
}

/// Cancel a task and its unfinished steps.
#[utoipa::path(
    post, path = "/v1/tasks/{task_uuid}/cancel", tag = "tasks",
    params(("task_uuid" = Uuid, Path, description = "The task")),
    request_body(content = Option<CancelRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "Cancelled", body = CancelResponse),
        (status = 400, description = "Not a UUID, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task has already finished", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn cancel_task(
    State(state): State<Arc<ApiState>>,
    Path(task_uuid): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<CancelRequest>,
) -> Result<Json<CancelResponse>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let engine = &state.engine;
    let reason = body.and_then(|b| b.reason);
    let now = engine.clock().now_ms();
    let outcome = state
        .db(engine.store().task_cancel(task_uuid, reason, now, "api".to_string()))
        .await?;
    match outcome {
        TaskCancelOutcome::Cancelled {
            task_uuid,
            namespace,
            steps_cancelled,
        } => {
            engine.metrics().tasks_cancelled.with_label_values(&[&namespace]).inc();
            tracing::info!(%task_uuid, steps_cancelled, "task cancelled");
            Ok(Json(CancelResponse {
                task_uuid,
                state: TaskState::Cancelled,
                steps_cancelled,
            }))
        }
        TaskCancelOutcome::AlreadyFinished { task_uuid, state } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "task_finished",
            format!("task {task_uuid} has already finished ({state})"),
        )),
        TaskCancelOutcome::NotFound { task_uuid } => {
            Err(ApiError::not_found("task_not_found", format!("no task {task_uuid}")))
        }
    }
}

/// A step of a task, with its state changes.
#[utoipa::path(
    get, path = "/v1/tasks/{task_uuid}/steps/{step_uuid}", tag = "tasks",
    params(
        ("task_uuid" = Uuid, Path, description = "The task"),
        ("step_uuid" = Uuid, Path, description = "One of its steps"),
    ),
    responses(
        (status = 200, description = "The step and its transitions", body = StepDetail),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such task, or no such step in it", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn get_step(
    State(state): State<Arc<ApiState>>,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
) -> Result<Json<StepDetail>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let step_uuid = parse_uuid("step_uuid", &step_uuid)?;
    let store = state.engine.store();
    let task = state
        .db(store.task_get(task_uuid))
        .await?
        .ok_or_else(|| ApiError::not_found("task_not_found", format!("no task {task_uuid}")))?;
    let step = task
        .steps
        .into_iter()
        .find(|s| s.step_uuid == step_uuid)
        .ok_or_else(|| ApiError::not_found("step_not_found", format!("task {task_uuid} has no step {step_uuid}")))?;
    let transitions = state.db(store.step_transitions(step_uuid)).await?;
    Ok(Json(StepDetail {
        task_uuid,
        step,
        transitions,
    }))
}
