//! The contract every language binding speaks: the messages that cross the FFI
//! boundary (step events out, step results in, task requests and views, domain
//! events), as serde types. `proto-contract/schemas/` holds the same types as JSON
//! Schema (draft 2020-12), generated from these with schemars; a test keeps the two
//! equal and checks the golden files in `proto-contract/golden/` against both.
//!
//! Across FFI each call carries one JSON document per batch in each direction;
//! bindings parse it with their own language's JSON library. Inbound messages are
//! decoded with `deny_unknown_fields`: a misspelt key is an error, never ignored.

pub mod domain_event;
pub mod outcome;
pub mod schema;
pub mod step_event;
pub mod step_result;
pub mod task;

pub use domain_event::{DomainEventMode, PublishDomainEvent};
pub use outcome::{BatchOutcome, CursorConfig, DecisionOutcome, DynamicOutcome};
pub use step_event::{HandlerSpec, StepEvent};
pub use step_result::{CompletionReport, InvalidResult, RejectedResult, ResultError, StepCompletion};
pub use task::TaskRequest;
