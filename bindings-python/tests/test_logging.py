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
