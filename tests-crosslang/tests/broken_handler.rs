//! The runner itself: a deliberately broken handler in any one language makes the
//! suite fail, naming the run, with a readable diff against the expectation and
//! against the other language. Runs the real `tasker-crosslang` binary (SQLite),
//! each time with one language's handler swapped for its deliberately wrong variant
//! (`--break LANGUAGE:CALLABLE`, kept next to the real handlers): `square` off by
//! one on the linear scenario, a `sum_range` that ignores its checkpoint on the
//! batch scenario, and a `publish_events` that publishes every event as `fast` (none
//! stored) on the domain events scenario.
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

/// The languages in pairs: the broken one and another one to compare it with.
const PAIRS: [(&str, &str); 4] = [
    ("rust", "python"),
    ("python", "rust"),
    ("ruby", "rust"),
    ("typescript", "rust"),
];

/// Runs the suite on `scenario` with `broken:callable` broken; returns stdout and
/// the whole report (stdout and stderr) for messages.
fn run_broken(scenario: &str, broken: &str, other: &str, callable: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tasker-crosslang"))
        .args(["--scenario", scenario, "--backends", "sqlite"])
        .args(["--languages", &format!("{broken},{other}")])
        .args(["--break", &format!("{broken}:{callable}")])
        .output()
        .expect("the runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = format!("{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{broken}: the suite must fail\n{report}");
    (stdout, report)
}

/// The cells of a case's table row after its name, in table (language) order.
fn cells<'a>(stdout: &'a str, report: &str, case: &str) -> Vec<&'a str> {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(case))
        .unwrap_or_else(|| panic!("no table row for {case}\n{report}"));
    row.split_whitespace().skip(1).collect()
}

/// The row of a case the broken language fails: its FAIL, the other's pass
/// (columns are in language order: rust, python, ruby, typescript).
fn broken_row(broken: &str) -> [&'static str; 2] {
    if broken == "rust" {
        ["FAIL", "pass"]
    } else {
        ["pass", "FAIL"]
    }
}

#[test]
fn a_broken_handler_in_any_one_language_fails_the_suite_with_a_readable_diff() {
    require_env();
    for (broken, other) in PAIRS {
        let (stdout, report) = run_broken("linear", broken, other, "square");
        assert_eq!(
            cells(&stdout, &report, "linear/n6"),
            broken_row(broken),
            "{broken}\n{report}"
        );
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

#[test]
fn a_batch_worker_that_ignores_its_checkpoint_fails_the_checkpoint_case_in_any_language() {
    require_env();
    for (broken, other) in PAIRS {
        let (stdout, report) = run_broken("batch", broken, other, "sum_range");
        let row = cells(&stdout, &report, "batch/checkpoint_resume");
        assert_eq!(row, broken_row(broken), "{broken}\n{report}");
        // Without a retry, ignoring the checkpoint changes nothing.
        let row = cells(&stdout, &report, "batch/three_batches");
        assert_eq!(row, ["pass", "pass"], "{broken}\n{report}");
        for line in [
            format!("FAIL batch/checkpoint_resume · {broken}/sqlite"),
            "    steps.process_002.result.processed: expected [6, 7], got [4, 5, 6, 7]".to_string(),
            "    steps.process_002.result.resumed_from: expected 6, got null".to_string(),
            format!("  differs from the other runs of this case (shown against {other}/sqlite):"),
            "conformance: 6 run(s), 5 passed, 1 failed".to_string(),
        ] {
            assert!(stdout.contains(&line), "{broken}: missing `{line}`\n{report}");
        }
    }
}

#[test]
fn a_handler_that_publishes_in_the_wrong_mode_fails_the_domain_events_case_in_any_language() {
    require_env();
    for (broken, other) in PAIRS {
        let (stdout, report) = run_broken("domain_events", broken, other, "publish_events");
        let row = cells(&stdout, &report, "domain_events/modes_and_conditions");
        assert_eq!(row, broken_row(broken), "{broken}\n{report}");
        for line in [
            format!("FAIL domain_events/modes_and_conditions · {broken}/sqlite"),
            "    domain_events.ship.shipment.planned: expected".to_string(),
            "    domain_events.ship.shipment.broadcast: expected".to_string(),
            format!("  differs from the other runs of this case (shown against {other}/sqlite):"),
            "conformance: 2 run(s), 1 passed, 1 failed".to_string(),
        ] {
            assert!(stdout.contains(&line), "{broken}: missing `{line}`\n{report}");
        }
    }
}
