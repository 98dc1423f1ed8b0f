//! The HTTP API end to end: a real server on a free port over an embedded engine
//! (SQLite and PostgreSQL), driven by an HTTP client. Every endpoint with its
//! success and error cases, bearer tokens, backpressure (503 + Retry-After without
//! losing an accepted task), readiness with breakers, metrics after a workflow,
//! and every response checked against its schema in `/openapi.json`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tasker_core::api::ApiServer;
use tasker_core::clock;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::store::TaskListParams;
use tasker_core::template::{parse_str, TemplateRegistry};
use uuid::Uuid;

mod support;

/// Templates of a namespace no worker serves (its tasks stay put), next to the examples.
const IDLE_ONE: &str = "namespace: idle\nname: one\nversion: 1.0.0\nidentity_strategy: always_unique\n\
                        steps:\n  - name: only\n    handler: { callable: noop }\n    publishes_events:\n\
                        \x20     - { name: only.done, condition: success, delivery_mode: broadcast }\n";
const IDLE_KEYED: &str = "namespace: idle\nname: keyed\nversion: 1.0.0\nidentity_strategy: caller_provided\n\
                          steps:\n  - name: only\n    handler: { callable: noop }\n";

use support::backends::{postgres_env, Env};

async fn sqlite_env() -> Env {
    support::backends::sqlite_env("api.db").await
}

/// A running API over an engine whose worker serves `examples`.
struct Api {
    engine: Arc<Engine>,
    server: Option<ApiServer>,
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    /// Every response seen: (method, matched route, status, body), for the OpenAPI check.
    seen: Arc<Mutex<Vec<Seen>>>,
    _env: Env,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    status: u16,
    body: Value,
}

fn registry() -> TemplateRegistry {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut registry = TemplateRegistry::load_dir(&examples, None).unwrap();
    for text in [IDLE_ONE, IDLE_KEYED] {
        registry.insert(parse_str(text, "<test>", None).unwrap());
    }
    registry
}

fn config(url: &str) -> EngineConfig {
    let mut cfg = EngineConfig {
        database_url: url.to_string(),
        poll_interval_ms: 20,
        lease_sweep_interval_ms: 3_600_000,
        shutdown_grace_ms: 5_000,
        ..Default::default()
    };
    cfg.api.bind = "127.0.0.1:0".into();
    cfg.api.body_limit_bytes = 4096;
    cfg.backpressure.sample_interval_ms = 20;
    cfg
}

impl Api {
    async fn start(env: Env, tune: impl FnOnce(&mut EngineConfig)) -> Self {
        let mut cfg = config(&env.url);
        tune(&mut cfg);
        let engine = Arc::new(Engine::start_with(
            env.store.clone(),
            clock::system(),
            cfg.clone(),
            tasker_core::examples::registry(),
            registry(),
            vec!["examples".into()],
        ));
        let server = ApiServer::start(engine.clone(), &cfg.api).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let token = cfg.api.tokens.first().cloned();
        Self {
            engine,
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            token,
            seen: Arc::new(Mutex::new(Vec::new())),
            _env: env,
        }
    }

    /// Sends a request (with the configured token, if any) and records the answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.record(method, path, req.send().await.unwrap()).await
    }

    async fn record(
        &self,
        method: Method,
        path: &str,
        resp: reqwest::Response,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        self.seen.lock().unwrap().push(Seen {
            method: method.as_str().to_lowercase(),
            path: path.split('?').next().unwrap().to_string(),
            status: status.as_u16(),
            body: body.clone(),
        });
        (status, body, headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, b, _) = self.send(Method::GET, path, None).await;
        (s, b)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(Method::POST, path, Some(body)).await;
        (s, b)
    }

    /// Sends raw bytes with a content type.
    async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let (s, b, _) = self.record(Method::POST, path, req.send().await.unwrap()).await;
        (s, b)
    }

    async fn wait_until_finished(&self, task_uuid: Uuid) -> Value {
        self.engine
            .wait_for_task(task_uuid, Duration::from_secs(30))
            .await
            .unwrap();
        self.get(&format!("/v1/tasks/{task_uuid}")).await.1
    }

    async fn stop(mut self) -> Vec<Seen> {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        self.engine.stop(Duration::from_secs(5)).await;
        self.seen.lock().unwrap().clone()
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("<no field>")
}

per_backend!(
    a_task_created_over_http_runs_and_is_read_back_with_its_steps_and_metrics,
    creation_errors_are_json_with_a_stable_code_and_the_offending_field,
    unknown_or_malformed_ids_and_parameters_are_404_or_400,
    cancelling_stops_the_task_and_a_second_cancel_conflicts,
    bearer_tokens_guard_every_route_but_health,
    templates_are_listed_and_shown_with_their_dag_as_mermaid,
    readiness_reports_the_database_migrations_and_an_open_breaker,
    a_namespace_over_its_ready_limit_gets_503_and_keeps_every_accepted_task,
    every_response_matches_its_schema_in_the_openapi_document,
    dead_letter_entries_are_listed_shown_and_resolved_over_http,
);

async fn a_task_created_over_http_runs_and_is_read_back_with_its_steps_and_metrics(env: Env) {
    let api = Api::start(env, |_| {}).await;
    let correlation = Uuid::now_v7();
    let (status, created, headers) = api
        .send(
            Method::POST,
            "/v1/tasks",
            Some(
                json!({"namespace": "examples", "name": "diamond", "context": {"n": 3}, "correlation_id": correlation}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["created"], true);
    assert_eq!(
        (created["name"].as_str(), created["version"].as_str()),
        (Some("diamond"), Some("1.0.0"))
    );
    let task_uuid: Uuid = created["task_uuid"].as_str().unwrap().parse().unwrap();
    assert_eq!(headers["location"], format!("/v1/tasks/{task_uuid}").as_str());

    let task = api.wait_until_finished(task_uuid).await;
    assert_eq!(task["state"], "complete", "{task}");
    assert_eq!(task["correlation_id"], correlation.to_string());
    let steps = task["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[3]["result"], json!({"value": 43046721}));

    let step_uuid = steps[0]["step_uuid"].as_str().unwrap();
    let (status, step) = api.get(&format!("/v1/tasks/{task_uuid}/steps/{step_uuid}")).await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(step["step"]["name"], "start");
    let events: Vec<&str> = step["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"create"));
    assert_eq!(
        step["transitions"].as_array().unwrap().last().unwrap()["to_state"],
        "complete"
    );

    // Two more tasks, then the list: filters and pages.
    for n in [1, 2] {
        let (s, b) = api
            .post(
                "/v1/tasks",
                json!({"namespace": "examples", "name": "linear", "context": {"n": n}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let linear: Uuid = b["task_uuid"].as_str().unwrap().parse().unwrap();
        assert_eq!(api.wait_until_finished(linear).await["state"], "complete");
    }
    let (status, idle) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    assert_eq!(status, StatusCode::CREATED, "{idle}");
    let (_, all) = api.get("/v1/tasks?limit=2").await;
    assert_eq!(all["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(all["next_offset"], 2);
    assert_eq!(all["tasks"][0]["namespace"], "idle", "newest first");
    let (_, rest) = api.get("/v1/tasks?limit=2&offset=2").await;
    assert_eq!(rest["tasks"].as_array().unwrap().len(), 2);
    let (_, idle_only) = api.get("/v1/tasks?namespace=idle").await;
    assert_eq!(idle_only["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(idle_only["next_offset"], Value::Null);
    let (_, done) = api.get("/v1/tasks?state=complete&namespace=examples").await;
    assert!(done["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "complete"));

    // The workflow shows in the metrics.
    let resp = api.client.get(format!("{}/metrics", api.base)).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for line in [
        "tasker_tasks_created_total{namespace=\"examples\"} 3",
        "tasker_tasks_created_total{namespace=\"idle\"} 1",
        "tasker_tasks_completed_total{namespace=\"examples\"} 3",
        "tasker_step_results_total{namespace=\"examples\",outcome=\"complete\"}",
        "tasker_step_duration_seconds_count{handler=\"square\",namespace=\"examples\",outcome=\"success\"}",
        "tasker_steps_claimed_total{namespace=\"examples\"}",
        "tasker_breaker_state{breaker=\"database\"} 0",
        "tasker_channel_capacity{channel=\"task_request\"} 5000",
        "tasker_channel_fill_ratio{channel=\"dispatch\"}",
        "tasker_http_requests_total{method=\"POST\",route=\"/v1/tasks\",status=\"201\"}",
    ] {
        assert!(text.contains(line), "metrics lack `{line}`:\n{text}");
    }
    api.stop().await;
}

async fn creation_errors_are_json_with_a_stable_code_and_the_offending_field(env: Env) {
    let api = Api::start(env, |_| {}).await;
    let (s, b) = api
        .post_raw("/v1/tasks", "application/json", b"{\"namespace\": ".to_vec())
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"), "{b}");
    let (s, b) = api.post_raw("/v1/tasks", "application/json", vec![]).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"), "{b}");
    let (s, b) = api.post_raw("/v1/tasks", "text/plain", b"{}".to_vec()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        "{b}"
    );
    let (s, b) = api.post("/v1/tasks", json!({"name": "diamond"})).await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "namespace"),
        "{b}"
    );
    let (s, b) = api
        .post(
            "/v1/tasks",
            json!({"namespace": "examples", "name": "diamond", "priority": 3}),
        )
        .await;
    assert_eq!((s, field(&b)), (StatusCode::UNPROCESSABLE_ENTITY, "priority"), "{b}");
    let (s, b) = api.post("/v1/tasks", json!({"namespace": "examples", "name": 7})).await;
    assert_eq!((s, field(&b)), (StatusCode::UNPROCESSABLE_ENTITY, "name"), "{b}");
    let (s, b) = api
        .post("/v1/tasks", json!({"namespace": "examples", "name": "nope"}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "template_not_found"), "{b}");
    let (s, b) = api
        .post(
            "/v1/tasks",
            json!({"namespace": "examples", "name": "diamond", "version": "9.9.9", "context": {"n": 1}}),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "template_not_found"), "{b}");
    let (s, b) = api
        .post(
            "/v1/tasks",
            json!({"namespace": "examples", "name": "diamond", "context": {"n": "three"}}),
        )
        .await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_context", "context"),
        "{b}"
    );
    assert!(b["error"]["details"][0].as_str().unwrap().contains("/n"), "{b}");
    let (s, b) = api
        .post("/v1/tasks", json!({"namespace": "idle", "name": "keyed"}))
        .await;
    assert_eq!(
        (s, field(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key"),
        "{b}"
    );

    // Over the body limit (4 KiB in these tests): 413, and nothing is created.
    let big = json!({"namespace": "idle", "name": "one", "context": {"pad": "x".repeat(5000)}});
    let (s, b) = api.post("/v1/tasks", big).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{b}"
    );

    // A duplicate idempotency key returns the task the first request created.
    let keyed = json!({"namespace": "idle", "name": "keyed", "idempotency_key": "order-17"});
    let (s1, first) = api.post("/v1/tasks", keyed.clone()).await;
    let (s2, second) = api.post("/v1/tasks", keyed).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK), "{first} {second}");
    assert_eq!(first["task_uuid"], second["task_uuid"]);
    assert_eq!(second["created"], false);
    let tasks = api.engine.store().task_list(TaskListParams::default()).await.unwrap();
    assert_eq!(tasks.len(), 1, "only the keyed task exists");
    api.stop().await;
}

async fn unknown_or_malformed_ids_and_parameters_are_404_or_400(env: Env) {
    let api = Api::start(env, |_| {}).await;
    let unknown = Uuid::now_v7();
    let (s, b) = api.get("/v1/tasks/not-a-uuid").await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (StatusCode::BAD_REQUEST, "invalid_parameter", "task_uuid")
    );
    let (s, b) = api.get(&format!("/v1/tasks/{unknown}")).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "task_not_found"));
    let (s, b) = api.get(&format!("/v1/tasks/{unknown}/steps/{unknown}")).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "task_not_found"));
    let (_, created) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    let task = created["task_uuid"].as_str().unwrap();
    let (s, b) = api.get(&format!("/v1/tasks/{task}/steps/{unknown}")).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "step_not_found"));
    let (s, b) = api.get(&format!("/v1/tasks/{task}/steps/zzz")).await;
    assert_eq!((s, field(&b)), (StatusCode::BAD_REQUEST, "step_uuid"));
    let (s, b) = api.get("/v1/tasks?state=sleeping").await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (StatusCode::BAD_REQUEST, "invalid_parameter", "state")
    );
    let (s, b) = api.get("/v1/tasks?limit=1001").await;
    assert_eq!((s, field(&b)), (StatusCode::BAD_REQUEST, "limit"));
    let (s, b) = api.get("/v1/tasks?limit=many").await;
    assert_eq!((s, field(&b)), (StatusCode::BAD_REQUEST, "limit"));
    let (s, b) = api.get("/v1/tasks?page=2").await;
    assert_eq!((s, field(&b)), (StatusCode::BAD_REQUEST, "page"));
    let (s, b) = api.get("/v1/nothing-here").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b, _) = api.send(Method::DELETE, "/v1/tasks", None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        "{b}"
    );
    api.stop().await;
}

async fn cancelling_stops_the_task_and_a_second_cancel_conflicts(env: Env) {
    let api = Api::start(env, |_| {}).await;
    let (_, created) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    let task = created["task_uuid"].as_str().unwrap().to_string();
    let path = format!("/v1/tasks/{task}/cancel");
    let (s, b) = api
        .post(&path, json!({"reason": "changed my mind", "force": true}))
        .await;
    assert_eq!((s, field(&b)), (StatusCode::UNPROCESSABLE_ENTITY, "force"), "{b}");
    let (s, b) = api.post(&path, json!({"reason": "changed my mind"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["state"].as_str(), b["steps_cancelled"].as_u64()),
        (Some("cancelled"), Some(1))
    );
    let (_, view) = api.get(&format!("/v1/tasks/{task}")).await;
    assert_eq!(view["state"], "cancelled");
    assert_eq!(view["steps"][0]["state"], "cancelled");
    let (s, b, _) = api.send(Method::POST, &path, None).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "task_finished"), "{b}");
    let (s, b, _) = api
        .send(Method::POST, &format!("/v1/tasks/{}/cancel", Uuid::now_v7()), None)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "task_not_found"));
    let audit = api
        .engine
        .store()
        .task_transitions(task.parse().unwrap())
        .await
        .unwrap();
    let last = audit.last().unwrap();
    assert_eq!((last.to_state.as_str(), last.event.as_str()), ("cancelled", "cancel"));
    assert_eq!(last.metadata.as_ref().unwrap()["reason"], "changed my mind");
    let metrics = api.engine.metrics().render();
    assert!(
        metrics.contains("tasker_tasks_cancelled_total{namespace=\"idle\"} 1"),
        "{metrics}"
    );
    api.stop().await;
}

async fn bearer_tokens_guard_every_route_but_health(env: Env) {
    let api = Api::start(env, |c| c.api.tokens = vec!["first".into(), "s3cret".into()]).await;
    let url = |p: &str| format!("{}{p}", api.base);
    let health = api.client.get(url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    for path in ["/v1/tasks", "/v1/templates", "/ready", "/metrics", "/openapi.json"] {
        let none = api.client.get(url(path)).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path} without a token");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let (status, body, _) = api.record(Method::GET, path, none).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
        let wrong = api.client.get(url(path)).bearer_auth("s3cre").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path} with a wrong token");
        let right = api.client.get(url(path)).bearer_auth("s3cret").send().await.unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path} with a right token");
    }
    let post = api
        .client
        .post(url("/v1/tasks"))
        .json(&json!({"namespace": "idle", "name": "one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert!(api
        .engine
        .store()
        .task_list(TaskListParams::default())
        .await
        .unwrap()
        .is_empty());
    let (s, _) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    assert_eq!(s, StatusCode::CREATED, "with the token");
    api.stop().await;
}

async fn templates_are_listed_and_shown_with_their_dag_as_mermaid(env: Env) {
    let api = Api::start(env, |_| {}).await;
    let (s, list) = api.get("/v1/templates").await;
    assert_eq!(s, StatusCode::OK);
    let keys: Vec<String> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}/{}", t["namespace"].as_str().unwrap(), t["name"].as_str().unwrap()))
        .collect();
    for k in ["examples/diamond", "examples/linear", "idle/one", "idle/keyed"] {
        assert!(keys.contains(&k.to_string()), "{k} in {keys:?}");
    }
    let (s, t) = api.get("/v1/templates/examples/diamond").await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["version"], "1.0.0");
    assert_eq!(t["steps"][3]["dependencies"], json!(["left", "right"]));
    let mermaid = t["mermaid"].as_str().unwrap();
    assert!(mermaid.starts_with("graph TD"), "{mermaid}");
    assert_eq!(mermaid.matches("-->").count(), 4, "{mermaid}");
    let (s, _) = api.get("/v1/templates/examples/diamond?version=1.0.0").await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = api.get("/v1/templates/examples/diamond?version=2.0.0").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "template_not_found"));
    let (s, b) = api.get("/v1/templates/examples/diamond?version=latest").await;
    assert_eq!((s, field(&b)), (StatusCode::BAD_REQUEST, "version"));
    let (s, b) = api.get("/v1/templates/examples/nope").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "template_not_found"));
    api.stop().await;
}

async fn readiness_reports_the_database_migrations_and_an_open_breaker(env: Env) {
    let api = Api::start(env, |c| c.breakers.database.open_ms = 3_600_000).await;
    let (s, ready) = api.get("/ready").await;
    assert_eq!(s, StatusCode::OK, "{ready}");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["migrations"]["ok"], true);
    assert_eq!(
        ready["breakers"],
        json!([{"name": "database", "state": "closed"}, {"name": "ffi_completion", "state": "closed"}])
    );
    let (s, health) = api.get("/health").await;
    assert_eq!((s, health), (StatusCode::OK, json!({"status": "ok"})));
    // The database breaker opens (as it would after failed calls): not ready, and
    // task creation and reads are refused at once with Retry-After.
    let db = &api.engine.breakers().database;
    for _ in 0..db.config().failure_threshold {
        db.record_failure();
    }
    let (s, ready) = api.get("/ready").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["breakers"][0]["state"], "open");
    let (s, b, headers) = api
        .send(
            Method::POST,
            "/v1/tasks",
            Some(json!({"namespace": "idle", "name": "one"})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::SERVICE_UNAVAILABLE, "overloaded"), "{b}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1 && retry == b["error"]["retry_after_seconds"].as_u64().unwrap());
    let (s, b) = api.get("/v1/tasks").await;
    assert_eq!((s, code(&b)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"), "{b}");
    let text = api.engine.metrics().render();
    assert!(text.contains("tasker_breaker_state{breaker=\"database\"} 2"), "{text}");
    assert!(
        text.contains("tasker_task_creations_rejected_total{reason=\"database_unavailable\"} 1"),
        "{text}"
    );
    api.stop().await;
}

async fn a_namespace_over_its_ready_limit_gets_503_and_keeps_every_accepted_task(env: Env) {
    let api = Api::start(env, |c| {
        c.backpressure.namespace_max_ready_steps.insert("idle".into(), 3);
    })
    .await;
    let mut accepted = Vec::new();
    let mut refused = None;
    // Nobody serves `idle`: its ready steps pile up until the sampler sees more than 3.
    for _ in 0..2000 {
        let (s, b, headers) = api
            .send(
                Method::POST,
                "/v1/tasks",
                Some(json!({"namespace": "idle", "name": "one"})),
            )
            .await;
        match s {
            StatusCode::CREATED => accepted.push(b["task_uuid"].as_str().unwrap().to_string()),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some((b, headers));
                break;
            }
            other => panic!("unexpected {other}: {b}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (body, headers) = refused.expect("the namespace was never refused");
    assert_eq!(code(&body), "overloaded");
    assert!(body["error"]["message"].as_str().unwrap().contains("idle"), "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(accepted.len() > 3);
    // Other namespaces are still served.
    let (s, _) = api
        .post(
            "/v1/tasks",
            json!({"namespace": "examples", "name": "linear", "context": {"n": 2}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Every accepted task exists.
    for t in &accepted {
        let (s, _) = api.get(&format!("/v1/tasks/{t}")).await;
        assert_eq!(s, StatusCode::OK);
    }
    let text = api.engine.metrics().render();
    assert!(
        text.contains("tasker_task_creations_rejected_total{reason=\"ready_limit\"} 1"),
        "{text}"
    );
    assert!(text.contains("tasker_ready_steps{namespace=\"idle\"}"), "{text}");
    api.stop().await;
}

/// Resolves a `$ref` to `#/components/schemas/X` in the document.
fn validator_for(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = json!({ "components": doc["components"] });
    for (k, v) in schema.as_object().unwrap() {
        root[k] = v.clone();
    }
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

/// `/v1/tasks/{task_uuid}` matches `/v1/tasks/0190…`.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
}

async fn every_response_matches_its_schema_in_the_openapi_document(env: Env) {
    let api = Api::start(env, |c| c.staleness.step_enqueued_ms = 1).await;
    let (s, doc) = api.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    // A bit of everything, successes and errors.
    let (_, created) = api
        .post(
            "/v1/tasks",
            json!({"namespace": "examples", "name": "linear", "context": {"n": 2}}),
        )
        .await;
    let task = created["task_uuid"].as_str().unwrap().to_string();
    let view = api.wait_until_finished(task.parse().unwrap()).await;
    let step = view["steps"][0]["step_uuid"].as_str().unwrap().to_string();
    let (_, idle) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    let idle = idle["task_uuid"].as_str().unwrap().to_string();
    let unknown = Uuid::now_v7();
    for path in [
        "/health".to_string(),
        "/ready".into(),
        "/v1/tasks?limit=1".into(),
        "/v1/tasks?state=bogus".into(),
        format!("/v1/tasks/{task}"),
        format!("/v1/tasks/{unknown}"),
        format!("/v1/tasks/{task}/steps/{step}"),
        format!("/v1/tasks/{task}/steps/{unknown}"),
        "/v1/templates".into(),
        "/v1/templates/examples/linear".into(),
        "/v1/templates/examples/nope".into(),
    ] {
        api.get(&path).await;
    }
    api.post(
        "/v1/tasks",
        json!({"namespace": "examples", "name": "linear", "context": {}}),
    )
    .await;
    api.post("/v1/tasks", json!({"namespace": "examples"})).await;
    api.post_raw("/v1/tasks", "application/json", b"nope".to_vec()).await;
    api.post(&format!("/v1/tasks/{idle}/cancel"), json!({})).await;
    api.post(&format!("/v1/tasks/{idle}/cancel"), json!({})).await;
    let (_, entry, step) = dead_letter_an_idle_task(&api).await;
    for path in [
        "/v1/dlq".to_string(),
        "/v1/dlq?status=bogus".into(),
        format!("/v1/dlq/{entry}"),
        format!("/v1/dlq/{unknown}"),
    ] {
        api.get(&path).await;
    }
    let resolve = format!("/v1/dlq/{entry}/resolve");
    api.post(&resolve, json!({"action": "complete_step", "step_uuid": step}))
        .await;
    api.post(
        &format!("/v1/dlq/{unknown}/resolve"),
        json!({"action": "resolve_step", "step_uuid": step}),
    )
    .await;
    api.post(&resolve, json!({"action": "resolve_step", "step_uuid": step}))
        .await;
    api.post(&resolve, json!({"action": "resolve_step", "step_uuid": step}))
        .await;
    let paths = doc["paths"].as_object().unwrap().clone();
    let seen = api.stop().await;

    let mut checked = BTreeSet::new();
    for s in seen
        .iter()
        .filter(|s| s.path != "/metrics" && s.path != "/openapi.json")
    {
        let (template, item) = paths
            .iter()
            .find(|(t, _)| matches_template(t, &s.path))
            .unwrap_or_else(|| panic!("{} {} is not in the document", s.method, s.path));
        let op = &item[&s.method];
        assert!(op.is_object(), "{} {template} is not documented", s.method);
        let response = &op["responses"][s.status.to_string()];
        assert!(
            response.is_object(),
            "{} {template} answered {} which the document does not list",
            s.method,
            s.status
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{} {template} {} has no JSON schema",
            s.method,
            s.status
        );
        let validator = validator_for(&doc, schema);
        let errors: Vec<String> = validator
            .iter_errors(&s.body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {template} {}: {:?}\nbody: {}",
            s.method,
            s.status,
            errors,
            s.body
        );
        checked.insert(format!("{} {template} {}", s.method, s.status));
    }
    assert!(checked.len() >= 15, "{checked:?}");
    // Every route the server has is documented, and the other way round.
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let expected: BTreeSet<String> = [
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/v1/tasks",
        "/v1/tasks/{task_uuid}",
        "/v1/tasks/{task_uuid}/cancel",
        "/v1/tasks/{task_uuid}/steps/{step_uuid}",
        "/v1/templates",
        "/v1/templates/{namespace}/{name}",
        "/v1/dlq",
        "/v1/dlq/{entry_id}",
        "/v1/dlq/{entry_id}/resolve",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);
}

/// A full TaskRequest queue (its writer blocked by another connection's write
/// lock) refuses with 503 and Retry-After; every request that was accepted is
/// created once the lock goes, none is lost. SQLite only: the lock is SQLite's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_request_queue_answers_503_and_loses_no_accepted_task() {
    use sqlx::{Connection, Executor};
    let env = sqlite_env().await;
    let path = env.url.trim_start_matches("sqlite://").to_string();
    let api = Arc::new(
        Api::start(env, |c| {
            c.task_request_channel_capacity = 8;
            c.backpressure.task_request_high_water = 0.5;
        })
        .await,
    );
    let mut blocker = sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    blocker.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut requests = Vec::new();
    for i in 0..40 {
        let api = api.clone();
        requests.push(tokio::spawn(async move {
            let (s, b, h) = api
                .send(
                    Method::POST,
                    "/v1/tasks",
                    Some(json!({"namespace": "idle", "name": "one", "context": {"i": i}})),
                )
                .await;
            (s, b, h.get("retry-after").map(|v| v.to_str().unwrap().to_string()))
        }));
    }
    // Wait until some request was refused (the queue is full while the writer waits).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !requests.iter().any(|r| r.is_finished()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no request finished while the queue was blocked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    blocker.execute("COMMIT").await.unwrap();
    let mut created = Vec::new();
    let mut refused = 0;
    for r in requests {
        let (s, b, retry) = r.await.unwrap();
        match s {
            StatusCode::CREATED => created.push(b["task_uuid"].as_str().unwrap().to_string()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(code(&b), "overloaded", "{b}");
                assert_eq!(retry.as_deref(), Some("1"));
                refused += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(refused > 0, "nothing was refused");
    assert!(!created.is_empty(), "nothing was accepted");
    let stored = api
        .engine
        .store()
        .task_list(TaskListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let stored: BTreeSet<String> = stored.iter().map(|t| t.task_uuid.to_string()).collect();
    let accepted: BTreeSet<String> = created.into_iter().collect();
    assert_eq!(stored, accepted, "every accepted task exists, and only those");
    let text = api.engine.metrics().render();
    assert!(
        text.contains("tasker_task_creations_rejected_total{reason=\"queue_full\"}"),
        "{text}"
    );
}

/// Creates an `idle/one` task (no worker serves `idle`) and runs the engine's
/// staleness sweep until its unclaimed step is recorded (the API test engines treat
/// a step enqueued for 1 ms as stuck). Returns (task, entry, step).
async fn dead_letter_an_idle_task(api: &Api) -> (Uuid, Uuid, Uuid) {
    let (_, created) = api.post("/v1/tasks", json!({"namespace": "idle", "name": "one"})).await;
    let task: Uuid = created["task_uuid"].as_str().unwrap().parse().unwrap();
    for _ in 0..500 {
        let report = api.engine.staleness().sweep_once().await.unwrap();
        if let Some(e) = report.recorded.iter().find(|e| e.task_uuid == task) {
            return (task, e.entry_id, e.step_uuid.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the idle task was never recorded in the dead-letter queue");
}

async fn dead_letter_entries_are_listed_shown_and_resolved_over_http(env: Env) {
    let api = Api::start(env, |c| c.staleness.step_enqueued_ms = 1).await;
    let mut bus = api.engine.domain_events().subscribe();
    let (task, entry, step) = dead_letter_an_idle_task(&api).await;
    let (s, page) = api.get("/v1/dlq").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(entries[0]["entry_id"], entry.to_string());
    assert_eq!(
        (entries[0]["status"].as_str(), entries[0]["reason"].as_str()),
        (Some("open"), Some("step_enqueued_too_long"))
    );
    let (_, resolved_page) = api.get("/v1/dlq?status=resolved").await;
    assert_eq!(resolved_page["entries"], json!([]));
    let (_, by_reason) = api.get("/v1/dlq?reason=step_enqueued_too_long&namespace=idle").await;
    assert_eq!(by_reason["entries"].as_array().map(Vec::len), Some(1), "{by_reason}");
    let (_, other) = api.get("/v1/dlq?reason=step_lease_lost").await;
    assert_eq!(other["entries"], json!([]));
    let (_, one) = api.get("/v1/dlq?status=all&limit=1").await;
    assert_eq!((one["limit"].as_u64(), one["next_offset"].as_u64()), (Some(1), Some(1)));
    for (path, status, want) in [
        (
            "/v1/dlq?status=bogus".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        ("/v1/dlq?color=red".into(), StatusCode::BAD_REQUEST, "invalid_parameter"),
        (
            "/v1/dlq?reason=bored".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/dlq?limit=100000".into(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        ("/v1/dlq/nope".into(), StatusCode::BAD_REQUEST, "invalid_parameter"),
        (
            format!("/v1/dlq/{}", Uuid::now_v7()),
            StatusCode::NOT_FOUND,
            "dlq_entry_not_found",
        ),
    ] {
        let (s, b) = api.get(&path).await;
        assert_eq!((s, code(&b)), (status, want), "{path}: {b}");
    }
    let (s, shown) = api.get(&format!("/v1/dlq/{entry}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(shown["snapshot"]["task"]["task_uuid"], task.to_string());
    assert_eq!(shown["snapshot"]["steps"][0]["state"], "enqueued");
    let (_, view) = api.get(&format!("/v1/tasks/{task}")).await;
    assert_eq!(
        (view["state"].as_str(), view["steps"][0]["state"].as_str()),
        (Some("blocked_by_failures"), Some("error"))
    );

    let resolve = format!("/v1/dlq/{entry}/resolve");
    let stranger = Uuid::now_v7();
    for (body, status, want, at) in [
        (
            json!({"action": "explode", "step_uuid": step}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "action",
        ),
        (
            json!({"action": "complete_step", "step_uuid": step}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "result",
        ),
        (
            json!({"action": "retry_step", "step_uuid": step, "result": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "result",
        ),
        (
            json!({"action": "resolve_step", "step_uuid": step, "force": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "force",
        ),
        (
            json!({"action": "resolve_step", "step_uuid": stranger}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "step_not_in_task",
            "step_uuid",
        ),
    ] {
        let (s, b) = api.post(&resolve, body.clone()).await;
        assert_eq!((s, code(&b), field(&b)), (status, want, at), "{body}: {b}");
    }
    let (s, b) = api.post_raw(&resolve, "application/json", b"{".to_vec()).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"), "{b}");
    let (s, b) = api
        .post(
            &format!("/v1/dlq/{}/resolve", Uuid::now_v7()),
            json!({"action": "resolve_step", "step_uuid": step}),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "dlq_entry_not_found"), "{b}");

    let (s, b) = api
        .post(
            &resolve,
            json!({"action": "complete_step", "step_uuid": step, "result": {"done": "by hand"},
                   "note": "the idle namespace has no worker", "resolved_by": "ops"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["step_state"].as_str(), b["task_state"].as_str()),
        (Some("complete"), Some("complete")),
        "{b}"
    );
    assert_eq!(
        (
            b["entry"]["status"].as_str(),
            b["entry"]["resolution"].as_str(),
            b["entry"]["resolved_by"].as_str()
        ),
        (Some("resolved"), Some("complete_step"), Some("ops"))
    );
    let (_, view) = api.get(&format!("/v1/tasks/{task}")).await;
    assert_eq!(view["state"], "complete");
    assert_eq!(view["steps"][0]["result"], json!({"done": "by hand"}));
    // The completion fired the step's declared success event, on both paths.
    let fast = bus.try_recv().expect("the broadcast event's fast half");
    assert_eq!(
        (fast.name.as_str(), &fast.payload),
        ("only.done", &json!({"done": "by hand"}))
    );
    let stored = api
        .engine
        .event_subscriber("reader")
        .poll(10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, fast);
    let (s, b) = api
        .post(&resolve, json!({"action": "retry_step", "step_uuid": step}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "dlq_entry_resolved"), "{b}");
    let metrics = api.engine.metrics().render();
    assert!(
        metrics.contains("tasker_dlq_entries_created_total{reason=\"step_enqueued_too_long\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tasker_dlq_open_entries 0"), "{metrics}");
    api.stop().await;
}
