"""The worker loop against a fake bridge: capacity-aware polling, batched
completions, failures outside handlers, async cancellation, poll errors."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Dict, List

import tasker


def make_event(callable_name: str, method: str = "call", deadline_ms: int = 0, **extra: Any) -> Dict[str, Any]:
    ev = {
        "event_id": str(uuid.uuid4()),
        "task_uuid": str(uuid.uuid4()),
        "step_uuid": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "namespace": "unit",
        "task_name": "t",
        "task_version": "1.0.0",
        "step_name": callable_name,
        "template_step_name": callable_name,
        "step_type": "standard",
        "handler": {"callable": callable_name, "method": method, "initialization": {}},
        "context": {},
        "dependency_results": {},
        "attempt": 1,
        "max_attempts": 3,
        "retryable": True,
        "timeout_ms": 30000,
        "deadline_ms": deadline_ms or int(time.time() * 1000) + 30000,
        "checkpoint": None,
    }
    ev.update(extra)
    return ev


class FakeBridge:
    def __init__(self, events: List[Dict[str, Any]], fail_polls: int = 0) -> None:
        self.events = list(events)
        self.polls: List[int] = []
        self.batches: List[List[Dict[str, Any]]] = []
        self.closed = False
        self.fail_polls = fail_polls
        self.lock = threading.Lock()
        self.held = 0  # results inside a complete call waiting on complete_gate
        self.complete_gate = threading.Event()
        self.complete_gate.set()

    def poll_step_events(self, max_events: int, timeout_ms: int) -> List[Dict[str, Any]]:
        if self.closed:
            raise tasker.WorkerClosed("closed")
        with self.lock:
            self.polls.append(max_events)
            if self.fail_polls:
                self.fail_polls -= 1
                raise tasker.DatabaseError("database is down")
            out, self.events = self.events[:max_events], self.events[max_events:]
        if not out:
            time.sleep(min(timeout_ms, 20) / 1000)
        return out

    def complete_step_events_json(self, text: str) -> Dict[str, Any]:
        batch = json.loads(text)
        with self.lock:
            self.held += len(batch)
        self.complete_gate.wait()
        with self.lock:
            self.held -= len(batch)
        with self.lock:
            self.batches.append(batch)
        return {"accepted": len(batch), "invalid": [], "rejected": []}

    def shutdown(self, grace_ms: int) -> Dict[str, int]:
        self.closed = True
        return {"drained": 0, "released": 0}

    def worker_status(self) -> Dict[str, Any]:
        return {"state": "closed" if self.closed else "running"}

    def results(self) -> Dict[str, Dict[str, Any]]:
        with self.lock:
            return {r["event_id"]: r for b in self.batches for r in b}


def wait_until(cond: Any, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_polls_at_most_the_free_slots_and_batches_results() -> None:
    gate = threading.Event()
    running = []

    @tasker.handler("block")
    def block(ctx: tasker.StepContext) -> Any:
        running.append(ctx.event_id)
        gate.wait(10)
        return {"ok": True}

    events = [make_event("block") for _ in range(7)]
    bridge = FakeBridge(events)
    worker = tasker.Worker(handlers=[block], concurrency=3, bridge=bridge, poll_timeout_ms=20)
    worker.start()
    try:
        wait_until(lambda: len(running) == 3)
        time.sleep(0.1)
        assert len(running) == 3, "never more handlers than concurrency"
        assert max(bridge.polls) <= 3
        assert worker.in_flight == 3
        # Hold the completer: the three results pile up, and their slots stay
        # busy until they are sent.
        bridge.complete_gate.clear()
        gate.set()
        wait_until(lambda: bridge.held + worker._results.qsize() == 3)
        time.sleep(0.1)
        assert len(running) == 3, "a slot frees only once its result is sent"
        bridge.complete_gate.set()
        wait_until(lambda: len(bridge.results()) == 7)
    finally:
        gate.set()
        bridge.complete_gate.set()
        worker.stop()
    assert all(r["success"] and r["result"] == {"ok": True} for r in bridge.results().values())
    assert all("execution_time_ms" in r for r in bridge.results().values())
    assert any(len(b) >= 2 for b in bridge.batches), f"results were not batched: {[len(b) for b in bridge.batches]}"
    assert all(p >= 1 for p in bridge.polls)


def test_failures_outside_handlers() -> None:
    class Only(tasker.StepHandler):
        def call(self, ctx: tasker.StepContext) -> tasker.StepResult:
            return self.success(1)

    events = [make_event("missing"), make_event("only", method="nope"), make_event("only", method="call")]
    bridge = FakeBridge(events)
    with tasker.Worker(handlers={"only": Only}, bridge=bridge, poll_timeout_ms=20):
        wait_until(lambda: len(bridge.results()) == 3)
    r = bridge.results()
    missing, nope, ok = (r[e["event_id"]] for e in events)
    assert missing["error"]["error_type"] == "handler_not_found" and missing["error"]["retryable"] is False
    assert "only" in missing["error"]["message"]
    assert nope["error"]["error_type"] == "unknown_method" and nope["error"]["retryable"] is False
    assert ok == {**ok, "success": True, "result": 1}


def test_async_handler_past_its_deadline_is_cancelled() -> None:
    cancelled = threading.Event()

    @tasker.handler("forever")
    async def forever(ctx: tasker.StepContext) -> Any:
        import asyncio

        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    ev = make_event("forever", deadline_ms=int(time.time() * 1000) + 300)
    bridge = FakeBridge([ev])
    worker = tasker.Worker(handlers=[forever], bridge=bridge, poll_timeout_ms=20, concurrency=1)
    with worker:
        assert cancelled.wait(5)
        wait_until(lambda: worker.in_flight == 0)
    assert bridge.results() == {}, "the bridge records the timeout; the worker sends nothing"


def test_poll_errors_are_survived() -> None:
    bridge = FakeBridge([make_event("ok")], fail_polls=2)
    with tasker.Worker(handlers={"ok": lambda ctx: "fine"}, bridge=bridge, poll_timeout_ms=20):
        wait_until(lambda: len(bridge.results()) == 1)
    (r,) = bridge.results().values()
    assert r["result"] == "fine"


def test_sync_function_returning_a_step_result_and_awaitables() -> None:
    async def later() -> Any:
        return {"late": True}

    handlers = {
        "explicit": lambda ctx: tasker.failure("told you", "explicit", retryable=False),
        "awaitable": lambda ctx: later(),
    }
    events = [make_event("explicit"), make_event("awaitable")]
    bridge = FakeBridge(events)
    with tasker.Worker(handlers=handlers, bridge=bridge, poll_timeout_ms=20):
        wait_until(lambda: len(bridge.results()) == 2)
    r = bridge.results()
    assert r[events[0]["event_id"]]["error"]["error_type"] == "explicit"
    assert r[events[1]["event_id"]]["result"] == {"late": True}
