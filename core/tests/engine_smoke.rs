use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tasker_core::config::EngineConfig;
use tasker_core::engine::Engine;
use tasker_core::orchestration::task_request::TemplateRef;
use tasker_core::orchestration::TaskSubmission;
use tasker_core::template::{load_file, TemplateRegistry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig { database_url: format!("sqlite://{}/t.db", dir.path().display()), ..Default::default() };
    let t = Arc::new(load_file(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/linear.yaml")), None).unwrap());
    let engine = Engine::start(cfg, tasker_core::examples::registry(), TemplateRegistry::new(), vec!["examples".into()]).await.unwrap();
    let created = engine.submit(TaskSubmission::new(TemplateRef::Loaded(t), json!({"n": 6}))).await.unwrap();
    let task = engine.wait_for_task(created.task_uuid, Duration::from_secs(10)).await.unwrap();
    println!("{}", serde_json::to_string_pretty(&task).unwrap());
    for t in engine.store().task_transitions(created.task_uuid).await.unwrap() { println!("{:?} -> {} ({})", t.from_state, t.to_state, t.event); }
    assert_eq!(task.steps.last().unwrap().result.as_ref().unwrap()["value"], json!(2821109907456i64));
    engine.shutdown().await;
}
