//! # Tasker core
//!
//! Tasker runs workflows: a *task template* (YAML) declares a DAG of named steps,
//! each run by a *handler*; a *task* is one run of a template with a JSON context.
//! This crate holds everything that decides what happens to a task. Language
//! bindings (Python, Ruby, TypeScript) are thin layers over it.
//!
//! ## Layout: the life of a step
//! - [`template`]: parse, validate and look up task templates (the TemplateCache store).
//! - [`state`]: the task and step state machines: which transitions are legal.
//! - [`store`]: the only door to the database. Every SQL statement lives under it;
//!   every state change is a compare-and-swap with an audit row in one transaction.
//! - [`orchestration`]: the actors that move tasks along: TaskRequest (validate +
//!   create), StepEnqueuer (timed work: leases, retries), ResultProcessor (apply
//!   results, retries with backoff), TaskFinalizer (complete / error, exactly once),
//!   and step expansion (the steps decision and batch outcomes create).
//! - [`worker`]: claims ready steps (never more than it has free slots), runs handlers,
//!   sends results back: StepExecutor, FFICompletion, TemplateCache, DomainEvent and
//!   WorkerStatus, joined by a bounded dispatch channel and a bounded completion channel.
//! - [`events`]: in-process engine events (progress) and domain events.
//! - [`engine`]: wires orchestration and a worker into one process (the embedded engine).
//! - [`api`]: the HTTP API (axum) `tasker orchestrator` serves: tasks, templates,
//!   health, readiness, metrics, OpenAPI.
//! - [`metrics`], [`breaker`]: per-engine Prometheus metrics and circuit breakers.
//! - [`cli`]: the `tasker` command.
//! - [`examples`]: the Rust handlers behind `examples/*.yaml`.
//!
//! ## Error policy
//! Each module has its own `thiserror` enum whose variants tell the caller what to do;
//! nothing in this crate panics on bad input, and handler panics become failure results.

#![warn(missing_docs)]

#[cfg(feature = "api")]
pub mod api;
pub mod breaker;
pub mod bridge;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract;
pub mod engine;
pub mod events;
pub mod examples;
pub mod metrics;
pub mod orchestration;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod worker;
