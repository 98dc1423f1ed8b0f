//! # The cross-language conformance suite
//!
//! Runs the same scenarios with step handlers written in Rust, Python, Ruby and
//! TypeScript, on SQLite and on PostgreSQL, and checks that every run ends exactly
//! as the scenario expects and exactly as every other run of the same scenario.
//! Nothing here is mocked: each language's handlers run in that language's worker
//! process, on its installed package, against a real database, and the outcome is
//! read back through the core's `Store`.
//!
//! How it fits together, in the order a run uses it:
//! - [`scenario`]: loads `scenarios/<name>/scenario.yaml` (the template, the task
//!   contexts and the expected outcome of each) and the named transition sequences
//!   of `scenarios/paths.yaml`.
//! - [`database`]: a fresh database per group of runs (a temporary SQLite file, or a
//!   PostgreSQL database created and dropped through an admin URL).
//! - [`workers`]: starts a language's worker process (`handlers/<language>/`) and
//!   stops it; the worker says it is ready with one `READY {json}` line.
//! - [`group`]: one database, its workers, every case submitted and awaited (with
//!   a [`dead_letter`] round trip where a case asks for one), the outcomes and the
//!   stored domain events read ([`outcome`]) and compared ([`compare`]).
//! - [`report`]: compares the runs of each case with each other, prints the table
//!   scenario × language × backend and the differences.
//!
//! The Rust language's handlers live in `handlers/rust/` and are compiled into the
//! `crosslang-rust-worker` binary ([`handlers`]).

pub mod compare;
pub mod database;
pub mod dead_letter;
pub mod group;
pub mod outcome;
pub mod report;
pub mod scenario;
pub mod workers;

#[path = "../handlers/rust/mod.rs"]
pub mod handlers;

use std::fmt;

/// A language whose handlers the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// Handlers compiled into `crosslang-rust-worker`.
    Rust,
    /// `handlers/python/`, on the installed wheel.
    Python,
    /// `handlers/ruby/`, on the installed gem.
    Ruby,
    /// `handlers/typescript/`, on the installed npm package.
    Typescript,
}

impl Language {
    /// Every language, in table order.
    pub const ALL: [Language; 4] = [Language::Rust, Language::Python, Language::Ruby, Language::Typescript];

    /// The lower-case name used on the command line, in namespaces and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Ruby => "ruby",
            Language::Typescript => "typescript",
        }
    }

    /// The language called `name` (as [`Language::name`] spells it).
    pub fn parse(name: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The namespace a mixed scenario routes this language's steps to.
    pub fn namespace(self) -> String {
        format!("{}.{}", scenario::MIXED_NAMESPACE_PREFIX, self.name())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A database backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// A SQLite file (shared by every worker process of a group).
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl Backend {
    /// Both backends, in table order.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// The lower-case name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend called `name`.
    pub fn parse(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong while setting up or running a group (a difference in outcomes
/// is not an error: it is reported as a failed cell).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A scenario file, template or expectation is malformed.
    #[error("scenario {scenario}: {message}")]
    Scenario {
        /// The scenario folder.
        scenario: String,
        /// What is wrong.
        message: String,
    },
    /// A database could not be created, opened or dropped.
    #[error("database: {0}")]
    Database(String),
    /// A worker process could not be started or did not become ready.
    #[error("{language} worker: {message}")]
    Worker {
        /// Its language.
        language: Language,
        /// What happened (with the tail of its log).
        message: String,
    },
    /// Something else in the run (task submission, reading outcomes).
    #[error("{0}")]
    Run(String),
}
