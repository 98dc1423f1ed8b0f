//! The runner itself: a deliberately broken handler in any one language makes the
//! suite fail, naming the run, with a readable diff against the expectation and
//! against the other language. Runs the real `tasker-crosslang` binary on the
//! linear scenario (SQLite), each time with one language's `square` swapped for its
//! off-by-one variant (`--break LANGUAGE:square`, kept next to the real handlers).
//!
//! Needs the installed language packages: run it through `scripts/conformance`,
//! which sets TASKER_CROSSLANG_PYTHON, TASKER_CROSSLANG_RUBY (with GEM_HOME) and
//! TASKER_CROSSLANG_NODE_APP.

use std::process::Command;

fn require_env() {
    for var in [
        "TASKER_CROSSLANG_PYTHON",
        "TASKER_CROSSLANG_RUBY",
        "TASKER_CROSSLANG_NODE_APP",
    ] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: run this test through scripts/conformance, which installs the language packages"
        );
    }
}

#[test]
fn a_broken_handler_in_any_one_language_fails_the_suite_with_a_readable_diff() {
    require_env();
    for (broken, other) in [
        ("rust", "python"),
        ("python", "rust"),
        ("ruby", "rust"),
        ("typescript", "rust"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tasker-crosslang"))
            .args(["--scenario", "linear", "--backends", "sqlite"])
            .args(["--languages", &format!("{broken},{other}")])
            .args(["--break", &format!("{broken}:square")])
            .output()
            .expect("the runner starts");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = format!("{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{broken}: the suite must fail\n{report}");
        let row = stdout
            .lines()
            .find(|l| l.starts_with("linear/n6"))
            .unwrap_or_else(|| panic!("no table row for linear/n6\n{report}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        // Columns are in language order: rust, python, ruby, typescript.
        let expected_cells = if broken == "rust" {
            ["FAIL", "pass"]
        } else {
            ["pass", "FAIL"]
        };
        assert_eq!(cells[1..], expected_cells, "{broken}: table row `{row}`\n{report}");
        for line in [
            format!("FAIL linear/n6 · {broken}/sqlite"),
            "  differs from the expectation:".to_string(),
            "    steps.step_1.result.value: expected 36, got 37".to_string(),
            "    steps.step_4.result.value: expected 2821109907456, got 3522757363802".to_string(),
            format!("  differs from the other runs of this case (shown against {other}/sqlite):"),
            "conformance: 2 run(s), 1 passed, 1 failed".to_string(),
        ] {
            assert!(stdout.contains(&line), "{broken}: missing `{line}`\n{report}");
        }
        assert!(
            !stdout.contains(&format!("FAIL linear/n6 · {other}/sqlite")),
            "{broken}: the unbroken {other} run must pass\n{report}"
        );
    }
}
