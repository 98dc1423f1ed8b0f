"""The failure table (proto-contract/README.md) for Python handlers, end to end."""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, List

import pytest

import tasker

from conftest import TEMPLATES_DIR, step


class CardDeclined(tasker.PermanentError):
    pass


class Throttled(tasker.RetryableError):
    pass


class RaisePermanent(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        raise CardDeclined("card declined", code="E42")


@tasker.handler("raise_retryable")
def raise_retryable(context: tasker.StepContext) -> Any:
    raise Throttled(f"try later (attempt {context.attempt})")


class RaiseUncaught(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"ratio": helper_that_divides(context.attempt)})


def helper_that_divides(n: int) -> float:
    return n / 0


class ReturnFailure(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.failure("upstream said no", error_type="upstream_refused", metadata={"attempt": context.attempt})


FAILURE_HANDLERS = {
    "raise_permanent": RaisePermanent,
    "raise_retryable": raise_retryable,
    "raise_uncaught": RaiseUncaught,
    "return_failure": ReturnFailure,
}


def test_failure_table(database_url: str) -> None:
    names = ("permanent", "retryable", "uncaught", "returned_failure")
    with tasker.Engine(database_url, templates=[TEMPLATES_DIR], handlers=FAILURE_HANDLERS, concurrency=4) as eng:
        created = [eng.create_task("pytests", f"failure_{n}", {}) for n in names]
        tasks = {n: eng.wait_for_task(t["task_uuid"], 60_000) for n, t in zip(names, created)}
    assert all(t["state"] == "error" for t in tasks.values()), tasks

    permanent = step(tasks["permanent"], "permanent")
    assert permanent["state"] == "error"
    assert permanent["attempts"] == 1, "a PermanentError is not retried"
    assert permanent["error"]["error_type"] == "CardDeclined"
    assert permanent["error"]["retryable"] is False
    assert permanent["error"]["message"] == "card declined"
    assert permanent["error"]["code"] == "E42"

    retryable = step(tasks["retryable"], "retryable")
    assert retryable["attempts"] == 2, "a RetryableError is retried up to max_attempts"
    assert retryable["error"]["error_type"] == "Throttled"
    assert retryable["error"]["retryable"] is True
    assert retryable["error"]["message"] == "try later (attempt 2)"

    uncaught = step(tasks["uncaught"], "uncaught")
    assert uncaught["attempts"] == 2
    err = uncaught["error"]
    assert err["error_type"] == "ZeroDivisionError"
    assert err["retryable"] is True
    assert "division by zero" in err["message"]
    assert "Traceback (most recent call last)" in err["backtrace"]
    assert "helper_that_divides" in err["backtrace"]

    returned = step(tasks["returned_failure"], "returned_failure")
    assert returned["attempts"] == 2, "failure() without retryable is retryable"
    assert returned["error"]["error_type"] == "upstream_refused"
    assert returned["error"]["retryable"] is True


class Unserialisable(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success(result=object())


@tasker.handler("nan_result")
def nan_result(context: tasker.StepContext) -> Any:
    return {"value": math.nan}


class ClassReturningDict(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        return {"value": 1}


@tasker.handler("healthy")
def healthy(context: tasker.StepContext) -> Any:
    return {"ok": True}


def test_invalid_results_fail_the_step_without_crashing(sqlite_url: str) -> None:
    handlers = {
        "unserialisable_result": Unserialisable,
        "nan_result": nan_result,
        "class_returning_dict": ClassReturningDict,
        "healthy": healthy,
    }
    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=handlers, concurrency=4) as eng:
        task = eng.run("pytests", "invalid_results", {}, timeout=60)
        # The worker is still alive: it runs another task.
        again = eng.run("pytests", "invalid_results", {}, timeout=60)
    for t in (task, again):
        assert t["state"] == "error"
        assert step(t, "healthy")["state"] == "complete"
        for name in ("unserialisable", "not_a_number", "plain_dict_from_class"):
            s = step(t, name)
            assert s["state"] == "error", s
            assert s["attempts"] == 1, "invalid_result is not retried"
            assert s["error"]["error_type"] == "invalid_result"
            assert s["error"]["retryable"] is False
    assert "JSON" in step(task, "unserialisable")["error"]["message"]
    assert "StepResult" in step(task, "plain_dict_from_class")["error"]["message"]


def test_handler_timeout_fails_the_step_as_timeout(sqlite_url: str) -> None:
    finished = threading.Event()
    cancelled = threading.Event()

    @tasker.handler("sleep_sync")
    def sleep_sync(context: tasker.StepContext) -> Any:
        time.sleep(context.config["seconds"])
        finished.set()
        return {"slept": True}

    @tasker.handler("sleep_async")
    async def sleep_async(context: tasker.StepContext) -> Any:
        import asyncio

        try:
            await asyncio.sleep(context.config["seconds"])
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {"slept": True}

    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=[sleep_sync, sleep_async]) as eng:
        started = time.monotonic()
        task = eng.run("pytests", "timeouts", {}, timeout=30)
        took = time.monotonic() - started
        assert finished.wait(5), "the sync handler ran to its end"
        assert cancelled.wait(5), "the async handler was cancelled after its deadline"
        # The late result of the sync handler changed nothing.
        task_after = eng.get_task(task["task_uuid"])
    assert task["state"] == "error"
    assert took < 2.4, f"the timeout did not wait for the sync handler ({took:.2f}s)"
    for name in ("sync_sleeper", "async_sleeper"):
        s = step(task, name)
        assert s["error"]["error_type"] == "timeout", s
        assert s["error"]["retryable"] is True
        assert s["attempts"] == 1
        assert step(task_after, name)["state"] == "error"


def test_retry_after_is_honoured(database_url: str) -> None:
    times: Dict[int, List[float]] = {}

    @tasker.handler("throttled")
    def throttled(context: tasker.StepContext) -> Any:
        times.setdefault(context.attempt, []).append(time.time())
        if context.attempt == 1:
            raise tasker.RetryableError("slow down", retry_after=1.5)
        return {"attempt": context.attempt}

    with tasker.Engine(database_url, templates=[TEMPLATES_DIR], handlers=[throttled]) as eng:
        task = eng.run("pytests", "retry_after", {}, timeout=30)
    assert task["state"] == "complete", task
    s = step(task, "throttled")
    assert s["attempts"] == 2
    # Recorded times: attempt 2 started no earlier than the hint after attempt 1.
    gap = times[2][0] - times[1][0]
    assert gap >= 1.5 - 0.005, f"attempt 2 came {gap:.3f}s after attempt 1"
    assert s["completed_at"] - int(times[1][0] * 1000) >= 1500 - 5


@pytest.mark.parametrize("style", ["class", "function"])
def test_unknown_callable_is_handler_not_found(sqlite_url: str, style: str) -> None:
    # No handler named in the dispatch template is registered except greeter.
    class Greeter(tasker.StepHandler):
        def call(self, context: tasker.StepContext) -> tasker.StepResult:
            return self.success({})

    handlers: Any = {"greeter": Greeter} if style == "class" else {"greeter": lambda ctx: {}}
    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=handlers) as eng:
        task = eng.run("pytests", "dispatch", {}, timeout=30)
    s = step(task, "nowhere")
    assert s["error"]["error_type"] == "handler_not_found"
    assert s["error"]["retryable"] is False
    assert s["attempts"] == 1
    assert "no_such_handler" in s["error"]["message"]
    assert "greeter" in s["error"]["message"], "the message names the registered handlers"
    bad = step(task, "bad_import")
    assert bad["error"]["error_type"] == "handler_not_found"
    assert "no_such_package" in bad["error"]["message"]
