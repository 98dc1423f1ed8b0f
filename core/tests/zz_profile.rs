use serde_json::json;
use std::time::Instant;
use tasker_core::orchestration::task_request::{build_task, TemplateRef};
use tasker_core::orchestration::TaskSubmission;
use tasker_core::store::*;
use tasker_core::template::parse_str;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_store_ops() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&format!("sqlite://{}/p.db", dir.path().display())).await.unwrap();
    let t = std::sync::Arc::new(parse_str(include_str!("../../examples/linear.yaml"), "x", None).unwrap());
    let (mut c, mut cl, mut co) = (0u128, 0u128, 0u128);
    let n = 300;
    for i in 0..n {
        let task = build_task(&t, &TaskSubmission::new(TemplateRef::Loaded(t.clone()), json!({"n": i}))).unwrap();
        let t0 = Instant::now();
        store.task_create(task, 1, "p".into()).await.unwrap();
        c += t0.elapsed().as_micros();
        for _ in 0..4 {
            let t1 = Instant::now();
            let s = store.step_claim_ready_many(StepClaimReadyManyParams { namespace: "examples".into(), limit: 64, now: 1000, lease_ms: 100000, worker_id: "w".into() }).await.unwrap();
            cl += t1.elapsed().as_micros();
            let t2 = Instant::now();
            store.step_complete(StepCompletion { step_uuid: s[0].step_uuid, claim_seq: s[0].claim_seq, outcome: StepOutcome::Complete { result: json!({"value": 1}) }, metadata: json!({}) }, 11, "p".into()).await.unwrap();
            co += t2.elapsed().as_micros();
        }
    }
    println!("create {} us, claim {} us, complete {} us", c / n, cl / (4 * n), co / (4 * n));
}
