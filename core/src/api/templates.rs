//! `/v1/templates`: the templates this process serves (loaded from
//! `tasker orchestrator --templates DIR`), and one template with its DAG drawn as a
//! Mermaid diagram.

use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::template::mermaid::to_mermaid;
use crate::template::{IdentityStrategy, LoadedTemplate, StepType};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// One template in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateSummary {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version (semver).
    pub version: String,
    /// Free text.
    pub description: Option<String>,
    /// Number of steps.
    pub step_count: usize,
    /// SHA-256 of the template's canonical JSON.
    pub content_hash: String,
}

/// The templates served.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// Sorted by namespace, name and version.
    pub templates: Vec<TemplateSummary>,
}

/// One step of a template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateStep {
    /// Step name.
    pub name: String,
    /// `standard`, `decision`, `deferred_convergence`, `batchable` or `batch_worker`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub step_type: StepType,
    /// Parent steps.
    pub dependencies: Vec<String>,
    /// Handler callable.
    pub handler: String,
    /// Per-attempt timeout.
    pub timeout_seconds: u64,
    /// Attempts allowed, the first included.
    pub max_attempts: u32,
}

/// A template with its DAG.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDetail {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version (semver).
    pub version: String,
    /// Free text.
    pub description: Option<String>,
    /// `strict`, `caller_provided` or `always_unique`.
    #[schema(value_type = String)]
    pub identity_strategy: IdentityStrategy,
    /// JSON Schema of the task context.
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<Value>,
    /// The steps, in declaration order.
    pub steps: Vec<TemplateStep>,
    /// The DAG as a Mermaid `graph TD` diagram.
    pub mermaid: String,
    /// SHA-256 of the template's canonical JSON.
    pub content_hash: String,
}

/// Which version to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    /// Exact version; the highest when absent.
    pub version: Option<String>,
}

fn summary(t: &LoadedTemplate) -> TemplateSummary {
    TemplateSummary {
        namespace: t.template.namespace.clone(),
        name: t.template.name.clone(),
        version: t.template.version.clone(),
        description: t.template.description.clone(),
        step_count: t.template.steps.len(),
        content_hash: t.content_hash.clone(),
    }
}

/// List the templates this process serves.
#[utoipa::path(
    get, path = "/v1/templates", tag = "templates",
    responses(
        (status = 200, description = "The templates", body = TemplateList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub async fn list_templates(State(state): State<Arc<ApiState>>) -> Json<TemplateList> {
    let registry = state.engine.templates().registry();
    let list = match registry.read() {
        Ok(r) => r.list(),
        Err(p) => p.into_inner().list(),
    };
    Json(TemplateList {
        templates: list.iter().map(|t| summary(t)).collect(),
    })
}

/// One template, with its DAG as Mermaid.
#[utoipa::path(
    get, path = "/v1/templates/{namespace}/{name}", tag = "templates",
    params(
        ("namespace" = String, Path, description = "Namespace"),
        ("name" = String, Path, description = "Name"),
        VersionQuery,
    ),
    responses(
        (status = 200, description = "The template", body = TemplateDetail),
        (status = 400, description = "A bad version", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
    )
)]
pub async fn get_template(
    State(state): State<Arc<ApiState>>,
    Path((namespace, name)): Path<(String, String)>,
    query: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TemplateDetail>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_parameter("version", e.body_text()))?;
    let key = match &query.version {
        Some(v) => format!("{namespace}/{name}@{v}"),
        None => format!("{namespace}/{name}"),
    };
    let registry = state.engine.templates().registry();
    let found = match registry.read() {
        Ok(r) => r.resolve(&key),
        Err(p) => p.into_inner().resolve(&key),
    };
    let t = found.map_err(|e| match e {
        crate::template::TemplateError::BadKey { .. } => {
            ApiError::invalid_parameter("version", format!("`{key}` is not namespace/name[@semver]"))
        }
        other => ApiError::not_found("template_not_found", other.to_string()),
    })?;
    let tt = &t.template;
    Ok(Json(TemplateDetail {
        namespace: tt.namespace.clone(),
        name: tt.name.clone(),
        version: tt.version.clone(),
        description: tt.description.clone(),
        identity_strategy: tt.identity_strategy,
        input_schema: tt.input_schema.clone(),
        steps: tt
            .steps
            .iter()
            .map(|s| TemplateStep {
                name: s.name.clone(),
                step_type: s.step_type,
                dependencies: s.dependencies.clone(),
                handler: s.handler.callable.clone(),
                timeout_seconds: s.timeout_seconds,
                max_attempts: s.retry.max_attempts,
            })
            .collect(),
        mermaid: to_mermaid(tt),
        content_hash: t.content_hash.clone(),
    }))
}
