//! `/v1/dlq`: the dead-letter queue for operators. List entries, show one (with the
//! snapshot of its task), and resolve an open one by acting on one step of its task
//! (`retry_step`, `resolve_step`, `complete_step` with a result); the task then
//! resumes. Everything goes to the store through the `database` circuit breaker;
//! a resolution wakes the workers of the steps it made ready.

use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::ApiState;
use crate::state::{StepState, TaskState};
use crate::store::{DlqAction, DlqEntry, DlqListParams, DlqResolveOutcome, DlqResolveParams, DlqStatus};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A page of dead-letter entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DlqPage {
    /// The entries, newest first.
    pub entries: Vec<DlqEntry>,
    /// The page size asked for.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
    /// The `offset` of the next page, when this page is full.
    pub next_offset: Option<u32>,
}

/// Filters and paging of `GET /v1/dlq`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it field by field
pub struct DlqListQuery {
    /// `open` (default), `resolved` or `all`.
    status: Option<String>,
    /// Only entries recorded for this reason (e.g. `step_lease_lost`).
    reason: Option<String>,
    /// Only entries of tasks in this namespace.
    namespace: Option<String>,
    /// Page size (default 100, at most `api.max_page_size`).
    limit: Option<u32>,
    /// Rows to skip (default 0).
    offset: Option<u32>,
}

/// What an operator does to the step.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveAction {
    /// Run it again, attempts reset.
    RetryStep,
    /// Mark it resolved by hand; its successors run.
    ResolveStep,
    /// Complete it with `result`; its successors receive it.
    CompleteStep,
}

/// How to resolve an entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `retry_step` (run it again, attempts reset), `resolve_step` (mark it resolved
    /// by hand; its successors run) or `complete_step` (complete it with `result`).
    pub action: ResolveAction,
    /// The step acted on: one of the entry's task's steps.
    pub step_uuid: Uuid,
    /// The step's result, for `complete_step` only (its successors receive it).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// A note kept with the entry.
    #[serde(default)]
    pub note: Option<String>,
    /// Who resolves (default `api`).
    #[serde(default)]
    pub resolved_by: Option<String>,
}

/// A resolved entry and where its step and task went.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolveResponse {
    /// The entry, now `resolved`.
    pub entry: DlqEntry,
    /// The step's new state.
    pub step_state: StepState,
    /// The task's state after its re-evaluation.
    pub task_state: Option<TaskState>,
}

fn entry_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::from_str(s).map_err(|_| ApiError::invalid_parameter("entry_id", format!("`{s}` is not a UUID")))
}

fn entry_not_found(id: Uuid) -> ApiError {
    ApiError::not_found("dlq_entry_not_found", format!("no dead-letter entry {id}"))
}

/// List dead-letter entries, newest first.
#[utoipa::path(
    get, path = "/v1/dlq", tag = "dlq",
    params(DlqListQuery),
    responses(
        (status = 200, description = "A page of entries", body = DlqPage),
        (status = 400, description = "A bad filter or page", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list_dlq(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<DlqPage>, ApiError> {
    let mut params = DlqListParams {
        status: Some(DlqStatus::Open),
        ..DlqListParams::default()
    };
    for (key, value) in &query {
        match key.as_str() {
            "status" if value == "all" => params.status = None,
            "status" => {
                params.status = Some(
                    DlqStatus::from_str(value)
                        .map_err(|e| ApiError::invalid_parameter("status", format!("{e}, or all")))?,
                )
            }
            "reason" => {
                params.reason = Some(
                    value
                        .parse()
                        .map_err(|e: String| ApiError::invalid_parameter("reason", e))?,
                )
            }
            "namespace" => params.namespace = Some(value.clone()),
            "limit" => params.limit = super::paging::parse("limit", value)?,
            "offset" => params.offset = super::paging::parse("offset", value)?,
            other => {
                return Err(ApiError::invalid_parameter(
                    other,
                    format!("unknown parameter `{other}` (expected status, reason, namespace, limit, offset)"),
                ))
            }
        }
    }
    super::paging::check_limit(params.limit, state.config.max_page_size, "entries")?;
    let (limit, offset) = (params.limit, params.offset);
    let entries = state.db(state.engine.store().dlq_list(params)).await?;
    let next_offset = super::paging::next_offset(entries.len(), limit, offset);
    Ok(Json(DlqPage {
        entries,
        limit,
        offset,
        next_offset,
    }))
}

/// One dead-letter entry, with the snapshot of its task at detection.
#[utoipa::path(
    get, path = "/v1/dlq/{entry_id}", tag = "dlq",
    params(("entry_id" = Uuid, Path, description = "The entry")),
    responses(
        (status = 200, description = "The entry", body = DlqEntry),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn get_dlq_entry(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<DlqEntry>, ApiError> {
    let id = entry_id(&id)?;
    state
        .db(state.engine.store().dlq_get(id))
        .await?
        .map(Json)
        .ok_or_else(|| entry_not_found(id))
}

/// Resolve an open entry by acting on one step of its task; the task resumes.
#[utoipa::path(
    post, path = "/v1/dlq/{entry_id}/resolve", tag = "dlq",
    params(("entry_id" = Uuid, Path, description = "The entry")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved", body = ResolveResponse),
        (status = 400, description = "Not a UUID, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already resolved, or the step's state does not allow the action", body = ErrorBody),
        (status = 413, description = "Body over api.body_limit_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body, or a step not of the entry's task", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn resolve_dlq_entry(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ResolveRequest>,
) -> Result<Json<ResolveResponse>, ApiError> {
    let id = entry_id(&id)?;
    let unprocessable = |message: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message.to_string()).field("result")
    };
    let step_uuid = req.step_uuid;
    let action = match (req.action, req.result) {
        (ResolveAction::CompleteStep, Some(result)) => DlqAction::CompleteStep { step_uuid, result },
        (ResolveAction::CompleteStep, None) => return Err(unprocessable("`complete_step` needs a `result`")),
        (_, Some(_)) => return Err(unprocessable("only `complete_step` takes a `result`")),
        (ResolveAction::RetryStep, None) => DlqAction::RetryStep { step_uuid },
        (ResolveAction::ResolveStep, None) => DlqAction::ResolveStep { step_uuid },
    };
    let engine = &state.engine;
    let now = engine.clock().now_ms();
    // A completion fires the step's declared success events, as a handler's would.
    let publisher = engine.domain_event_publisher();
    let events = state
        .db(publisher.resolution_events(engine.store(), id, &action, now))
        .await?;
    let outcome = state
        .db(engine.store().dlq_resolve(DlqResolveParams {
            entry_id: id,
            action,
            note: req.note,
            actor: req.resolved_by.unwrap_or_else(|| "api".into()),
            now,
            processor: "api".into(),
            events: events.durable,
        }))
        .await?;
    engine.staleness().resolved(&outcome).await;
    match outcome {
        DlqResolveOutcome::Resolved {
            entry,
            step_state,
            task,
            ..
        } => {
            publisher.publish_fast(events.fast, step_state);
            tracing::info!(entry_id = %id, task_uuid = %entry.task_uuid, %step_uuid, "dead-letter entry resolved");
            let task_state = match task {
                Some(change) => Some(change.to),
                None => state
                    .db(engine.store().task_get(entry.task_uuid))
                    .await?
                    .map(|t| t.state),
            };
            Ok(Json(ResolveResponse {
                entry,
                step_state,
                task_state,
            }))
        }
        DlqResolveOutcome::NotFound => Err(entry_not_found(id)),
        DlqResolveOutcome::AlreadyResolved { entry } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "dlq_entry_resolved",
            format!(
                "dead-letter entry {id} was already resolved ({} by {})",
                entry.resolution.map(|r| r.as_str()).unwrap_or("?"),
                entry.resolved_by.as_deref().unwrap_or("?")
            ),
        )),
        DlqResolveOutcome::StepNotInTask { step_uuid } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "step_not_in_task",
            format!("step {step_uuid} is not a step of the task of entry {id}"),
        )
        .field("step_uuid")),
        DlqResolveOutcome::StepNotResolvable {
            step_uuid,
            state: step_state,
            resolution,
        } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "step_not_resolvable",
            format!("cannot {resolution} step {step_uuid}: it is `{step_state}`"),
        )
        .field("step_uuid")),
    }
}
