//! TaskRequest: validates a submission against its template and creates the task.
//!
//! The actor owns a bounded command channel; it drains whatever requests are
//! waiting into one `task_create_many` transaction (one commit for a burst of
//! submissions), then answers each caller. A full channel is pushed back to the
//! caller as [`CreateTaskError::Overloaded`] by [`TaskRequestHandle::try_submit`],
//! or waited on by [`TaskRequestHandle::submit`].

use crate::canonical::canonical_sha256;
use crate::clock::SharedClock;
use crate::store::{NewStep, NewTask, SharedStore, StoreError, TaskCreateManyParams, TaskCreated, TemplateRecord};
use crate::template::{
    IdentityStrategy, LoadedTemplate, StepTemplate, StepType, TaskTemplate, TemplateError, TemplateRegistry,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Which template a submission runs.
#[derive(Debug, Clone)]
pub enum TemplateRef {
    /// `namespace/name[@version]`, resolved in the registry.
    Key(String),
    /// A template loaded by the caller (e.g. from a file).
    Loaded(Arc<LoadedTemplate>),
}

/// A request to run a template.
#[derive(Debug, Clone)]
pub struct TaskSubmission {
    /// The template.
    pub template: TemplateRef,
    /// The task context (validated against the template's input schema).
    pub context: Value,
    /// Makes resubmission safe: the same key returns the same task.
    pub idempotency_key: Option<String>,
    /// Links the task to the caller's traces; a new one is made when absent.
    pub correlation_id: Option<Uuid>,
    /// Reserved for prioritised claims.
    pub priority: i32,
}

impl TaskSubmission {
    /// A submission of `template` with `context` and defaults for the rest.
    pub fn new(template: TemplateRef, context: Value) -> Self {
        Self {
            template,
            context,
            idempotency_key: None,
            correlation_id: None,
            priority: 0,
        }
    }
}

/// Why a task was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    /// The template is unknown or invalid.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The context does not satisfy the template's input schema.
    #[error("context does not match the input schema of `{template}`:\n  {}", errors.join("\n  "))]
    InvalidContext {
        /// Template key.
        template: String,
        /// Each problem, with its JSON path.
        errors: Vec<String>,
    },
    /// The template's identity strategy is `caller_provided` and no key was given.
    #[error("template `{template}` requires an idempotency key (identity_strategy: caller_provided)")]
    IdempotencyKeyRequired {
        /// Template key.
        template: String,
    },
    /// Too much work is waiting (a full request queue, a namespace over its ready-step
    /// limit, an unreachable database); retry after `retry_after_ms`.
    #[error("task creation is overloaded ({reason}); retry in {retry_after_ms} ms")]
    Overloaded {
        /// What is overloaded.
        reason: String,
        /// When to try again.
        retry_after_ms: u64,
    },
    /// The engine is shutting down.
    #[error("task creation is closed: the engine is shutting down")]
    Closed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed while creating a batch of tasks this one was part of.
    #[error("database error ({code}): {message}")]
    StoreFailed {
        /// The store error's code.
        code: &'static str,
        /// The store error's message.
        message: String,
    },
}

/// Validates and creates tasks.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    store: SharedStore,
    clock: SharedClock,
    templates: Arc<RwLock<TemplateRegistry>>,
    processor: String,
}

impl TaskRequest {
    /// A TaskRequest resolving template keys in `templates`.
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        templates: Arc<RwLock<TemplateRegistry>>,
        processor: String,
    ) -> Self {
        Self {
            store,
            clock,
            templates,
            processor,
        }
    }

    /// Validates a submission and builds the rows to create.
    pub fn build(&self, sub: &TaskSubmission) -> Result<NewTask, CreateTaskError> {
        let loaded = match &sub.template {
            TemplateRef::Loaded(t) => t.clone(),
            TemplateRef::Key(key) => self.templates.read().unwrap_or_else(|p| p.into_inner()).resolve(key)?,
        };
        build_task(&loaded, sub)
    }

    /// Creates many tasks in one transaction; one answer per submission, in order.
    pub async fn create_many(&self, subs: &[TaskSubmission]) -> Vec<Result<TaskCreated, CreateTaskError>> {
        let mut answers: Vec<Option<Result<TaskCreated, CreateTaskError>>> = Vec::with_capacity(subs.len());
        let mut tasks = Vec::new();
        let mut slots = Vec::new();
        for (i, sub) in subs.iter().enumerate() {
            match self.build(sub) {
                Ok(task) => {
                    tasks.push(task);
                    slots.push(i);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        if !tasks.is_empty() {
            let params = TaskCreateManyParams {
                tasks,
                now: self.clock.now_ms(),
                processor: self.processor.clone(),
            };
            match self.store.task_create_many(params).await {
                Ok(created) => {
                    for (slot, c) in slots.into_iter().zip(created) {
                        answers[slot] = Some(Ok(c));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    let code = e.code();
                    for slot in slots {
                        answers[slot] = Some(Err(CreateTaskError::StoreFailed {
                            code,
                            message: message.clone(),
                        }));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every submission answered"))
            .collect()
    }

    /// Starts the actor with a bounded queue of `capacity` requests. It stops when
    /// every handle is dropped.
    pub fn spawn(
        self,
        capacity: usize,
        on_created: impl Fn(&TaskCreated) + Send + Sync + 'static,
    ) -> TaskRequestHandle {
        let (tx, mut rx) = mpsc::channel::<Command>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_CREATE_BATCH {
                    match rx.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                let subs: Vec<TaskSubmission> = batch.iter().map(|c| c.submission.clone()).collect();
                let answers = self.create_many(&subs).await;
                for (cmd, answer) in batch.into_iter().zip(answers) {
                    if let Ok(created) = &answer {
                        on_created(created);
                    }
                    let _ = cmd.reply.send(answer);
                }
            }
        });
        TaskRequestHandle { tx }
    }
}

/// Retry-After of a submission refused by a full queue (`try_submit`).
pub const QUEUE_FULL_RETRY_AFTER_MS: u64 = 1_000;

/// Most submissions written in one creation transaction.
pub const MAX_CREATE_BATCH: usize = 256;

struct Command {
    submission: TaskSubmission,
    reply: oneshot::Sender<Result<TaskCreated, CreateTaskError>>,
}

/// A cheap, cloneable way to submit tasks to the TaskRequest actor.
#[derive(Clone)]
pub struct TaskRequestHandle {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for TaskRequestHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRequestHandle")
            .field("capacity", &self.tx.capacity())
            .finish()
    }
}

impl TaskRequestHandle {
    /// Submits a task, waiting for room in the queue.
    pub async fn submit(&self, submission: TaskSubmission) -> Result<TaskCreated, CreateTaskError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command { submission, reply })
            .await
            .map_err(|_| CreateTaskError::Closed)?;
        rx.await.map_err(|_| CreateTaskError::Closed)?
    }

    /// Submits a task, failing with `Overloaded` at once when the queue is full.
    pub async fn try_submit(&self, submission: TaskSubmission) -> Result<TaskCreated, CreateTaskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Command { submission, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CreateTaskError::Overloaded {
                reason: "the task request queue is full".into(),
                retry_after_ms: QUEUE_FULL_RETRY_AFTER_MS,
            },
            mpsc::error::TrySendError::Closed(_) => CreateTaskError::Closed,
        })?;
        rx.await.map_err(|_| CreateTaskError::Closed)?
    }

    /// Fraction of the queue in use (0.0 – 1.0).
    pub fn fill_level(&self) -> f64 {
        1.0 - self.tx.capacity() as f64 / self.tx.max_capacity() as f64
    }

    /// A probe of the queue's fill for the metrics (does not keep the actor alive).
    pub fn channel_probe(&self) -> crate::metrics::ChannelProbe {
        crate::metrics::channel_probe(&self.tx)
    }
}

/// Builds the rows for one task: validates the context, computes the identity,
/// and lays out the steps created at the start (see [`initial_steps`]).
pub fn build_task(loaded: &LoadedTemplate, sub: &TaskSubmission) -> Result<NewTask, CreateTaskError> {
    let t = &loaded.template;
    let key = format!("{}/{}@{}", t.namespace, t.name, t.version);
    loaded
        .validate_context(&sub.context)
        .map_err(|errors| CreateTaskError::InvalidContext {
            template: key.clone(),
            errors,
        })?;
    let task_uuid = Uuid::now_v7();
    let identity_hash = match (&sub.idempotency_key, t.identity_strategy) {
        (Some(k), _) => canonical_sha256(&json!({"namespace": t.namespace, "name": t.name, "idempotency_key": k})),
        (None, IdentityStrategy::Strict) => canonical_sha256(
            &json!({"namespace": t.namespace, "name": t.name, "version": t.version, "context": sub.context}),
        ),
        (None, IdentityStrategy::CallerProvided) => {
            return Err(CreateTaskError::IdempotencyKeyRequired { template: key })
        }
        (None, IdentityStrategy::AlwaysUnique) => task_uuid.to_string(),
    };
    let included = initial_steps(t);
    let mut index_of = HashMap::new();
    let mut steps = Vec::new();
    for (_, s) in t.steps.iter().enumerate().filter(|(i, _)| included[*i]) {
        index_of.insert(s.name.as_str(), steps.len());
        steps.push(new_step(t, s, s.name.clone(), s.handler.initialization.clone()));
    }
    for s in t.steps.iter() {
        if let Some(&child) = index_of.get(s.name.as_str()) {
            steps[child].parents = s
                .dependencies
                .iter()
                .filter_map(|d| index_of.get(d.as_str()).copied())
                .collect();
        }
    }
    Ok(NewTask {
        task_uuid,
        template: TemplateRecord {
            content_hash: loaded.content_hash.clone(),
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            version: t.version.clone(),
            definition: loaded.definition_json(),
        },
        context: sub.context.clone(),
        identity_hash,
        correlation_id: sub.correlation_id.unwrap_or_else(Uuid::now_v7),
        priority: sub.priority,
        hold_failed: t.lifecycle.hold_failed_tasks,
        steps,
    })
}

/// A step row made from step `s` of template `t`, called `name` (the template step's
/// name, or a batch worker's `<name>_<batch_id>`), with its handler's
/// `initialization`; no parents yet.
pub fn new_step(t: &TaskTemplate, s: &StepTemplate, name: String, initialization: Value) -> NewStep {
    NewStep {
        step_uuid: Uuid::now_v7(),
        name,
        namespace: t.step_namespace(s).to_string(),
        template_step_name: s.name.clone(),
        step_type: s.step_type.as_str().to_string(),
        handler_callable: s.handler.callable.clone(),
        handler_method: s.handler.method.clone(),
        handler_initialization: initialization,
        retry: s.retry.clone(),
        timeout_ms: (s.timeout_seconds as i64) * 1000,
        parents: vec![],
    }
}

/// Which template steps exist when a task starts: everything except batch worker
/// templates, deferred convergence steps and whatever lies below a decision step
/// (those are created at run time, when a decision or batchable step's result is
/// written: see [`super::step_expansion`]).
pub fn initial_steps(t: &crate::template::TaskTemplate) -> Vec<bool> {
    let by_name: HashMap<&str, usize> = t.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut included: Vec<Option<bool>> = vec![None; t.steps.len()];
    fn visit(
        i: usize,
        t: &crate::template::TaskTemplate,
        by_name: &HashMap<&str, usize>,
        memo: &mut Vec<Option<bool>>,
        depth: usize,
    ) -> bool {
        if let Some(v) = memo[i] {
            return v;
        }
        if depth > t.steps.len() {
            return false; // a cycle; validation reports it
        }
        let s = &t.steps[i];
        let mut ok = !matches!(s.step_type, StepType::BatchWorker | StepType::DeferredConvergence);
        for d in &s.dependencies {
            match by_name.get(d.as_str()) {
                Some(&p) => {
                    let parent_is_decision = t.steps[p].step_type == StepType::Decision;
                    ok &= !parent_is_decision && visit(p, t, by_name, memo, depth + 1);
                }
                None => ok = false,
            }
        }
        memo[i] = Some(ok);
        ok
    }
    (0..t.steps.len())
        .map(|i| visit(i, t, &by_name, &mut included, 0))
        .collect()
}
