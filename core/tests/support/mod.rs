//! Shared helpers for integration tests. Include with `mod support;` from a file in
//! `core/tests/` (each test binary compiles its own copy).

pub mod backends;
pub mod pg;
pub mod process;
