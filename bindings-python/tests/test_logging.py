"""The core's tracing output reaches Python's logging (logger tasker.core)."""

from __future__ import annotations

import logging
from typing import Any

import tasker

from conftest import TEMPLATES_DIR


def test_core_logs_reach_python_logging(sqlite_url: str, caplog: Any) -> None:
    @tasker.handler("raise_permanent")
    def fails(context: tasker.StepContext) -> Any:
        raise tasker.PermanentError("logged failure")

    with caplog.at_level(logging.INFO, logger="tasker.core"):
        with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=[fails]) as eng:
            eng.run("pytests", "failure_permanent", {}, timeout=30)
    core = [r for r in caplog.records if r.name == "tasker.core"]
    assert core, "no record of the core was forwarded"
    assert any("logged failure" in r.getMessage() for r in core), [r.getMessage() for r in core]
    assert all(hasattr(r, "target") for r in core)


def test_a_handlers_log_line_carries_its_tasks_correlation_id(sqlite_url: str, caplog: Any) -> None:
    @tasker.handler("raise_permanent")
    def logs_then_fails(context: tasker.StepContext) -> Any:
        context.logger.info("working on it")
        raise tasker.PermanentError("done")

    with caplog.at_level(logging.INFO, logger="tasker.handler"):
        with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=[logs_then_fails]) as eng:
            task = eng.run("pytests", "failure_permanent", {}, timeout=30)
    lines = [r for r in caplog.records if r.getMessage() == "working on it"]
    assert lines, [r.getMessage() for r in caplog.records]
    assert all(r.correlation_id == task["correlation_id"] for r in lines)  # type: ignore[attr-defined]
    assert all(r.task_uuid == task["task_uuid"] for r in lines)  # type: ignore[attr-defined]
