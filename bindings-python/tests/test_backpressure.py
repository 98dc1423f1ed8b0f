"""Backpressure: an overloaded core refuses new tasks with a retryable error that
says when to try again (``Overloaded.retry_after``), and keeps every task it did
accept."""

from __future__ import annotations

import time
from typing import Any, List

import pytest

import tasker

from conftest import TEMPLATES_DIR


def test_an_overloaded_client_raises_a_retryable_error_with_retry_after(
    sqlite_url: str, monkeypatch: Any
) -> None:
    # No worker serves the namespace, so its ready steps pile up past a limit of 0.
    monkeypatch.setenv("TASKER_BACKPRESSURE_MAX_READY_STEPS", "0")
    monkeypatch.setenv("TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS", "20")
    client = tasker.Client(sqlite_url, templates=[TEMPLATES_DIR])
    try:
        created: List[str] = []
        deadline = time.monotonic() + 30
        with pytest.raises(tasker.Overloaded) as refused:
            while time.monotonic() < deadline:
                created.append(client.create_task("pytests", "failure_permanent")["task_uuid"])
                time.sleep(0.005)
        err = refused.value
        assert err.code == "overloaded" and err.retryable is True
        assert err.retry_after == 5.0
        assert "pytests" in str(err)
        assert created, "the first task is accepted"
        for uuid in created:
            assert client.get_task(uuid)["state"] == "steps_in_process"
    finally:
        client.close()


def test_other_errors_are_not_retryable() -> None:
    assert tasker.TaskNotFound.retryable is False and tasker.TaskNotFound.retry_after is None
    assert tasker.Overloaded.retryable is True
