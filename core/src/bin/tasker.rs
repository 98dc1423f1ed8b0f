//! The `tasker` command: flags and exit codes live in `tasker_core::cli`.
fn main() {
    std::process::exit(tasker_core::cli::main());
}
