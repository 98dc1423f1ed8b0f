//! The `tasker` command line (being written).

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    println!("tasker {}", env!("CARGO_PKG_VERSION"));
    0
}
