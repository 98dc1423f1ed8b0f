//! The one tokio runtime of this process: core's process runtime for hosts without
//! a runtime of their own (`tasker_core::bridge::runtime`), created on first use.
//! In a child made by `fork()` every call fails with `ForkedProcess` instead of hanging.

pub use tasker_core::bridge::runtime::{process_runtime as get, runtime_created_in as created_in};
