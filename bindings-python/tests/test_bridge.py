"""tasker.Bridge, the native contract one-to-one."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Dict, List

import pytest

import tasker

from conftest import TEMPLATES_DIR


def test_poll_releases_the_gil(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url, namespaces=["nothing_here"])
    try:
        ticks = 0
        stop = threading.Event()

        def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.01)

        t = threading.Thread(target=tick)
        t.start()
        t0 = time.monotonic()
        events = bridge.poll_step_events(max_events=4, timeout_ms=500)
        took = time.monotonic() - t0
        stop.set()
        t.join()
        assert events == []
        assert 0.45 <= took < 2.0
        assert ticks >= 20, f"the other thread ticked only {ticks} times during the poll"
    finally:
        bridge.shutdown(0)


def test_bridge_round_trip(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url, namespaces=["pytests"], concurrency=2, templates=[str(TEMPLATES_DIR)])
    try:
        task = bridge.create_task({"namespace": "pytests", "name": "slow", "context": {"seconds": 0}})
        assert task["state"] not in ("complete", "error")
        events: List[Dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            events = bridge.poll_step_events(max_events=10, timeout_ms=500)
        assert len(events) == 1
        ev = events[0]
        assert ev["step_name"] == "slow" and ev["handler"]["callable"] == "slow"
        assert ev["attempt"] == 1 and ev["task_uuid"] == task["task_uuid"]
        assert isinstance(bridge.extend_lease(ev["event_id"]), int)
        bridge.checkpoint_step(ev["event_id"], 5, {"partial": True})
        published = bridge.publish_domain_event("pytests.happened", {"x": 1}, "fast", ev["event_id"])
        assert published["name"] == "pytests.happened"
        status = bridge.worker_status()
        assert status["outstanding"] == 1 and status["state"] == "running"
        report = bridge.complete_step_events(
            [{"event_id": ev["event_id"], "success": True, "result": {"done": 1}, "execution_time_ms": 3}]
        )
        assert report == {"accepted": 1, "invalid": [], "rejected": []}
        done = bridge.wait_for_task(task["task_uuid"], 10_000)
        assert done["state"] == "complete"
        assert done["steps"][0]["result"] == {"done": 1}
        again = bridge.complete_step_events([{"event_id": ev["event_id"], "success": True, "result": {}}])
        assert again["accepted"] == 0 and len(again["rejected"]) == 1
        with pytest.raises(tasker.UnknownEvent):
            bridge.extend_lease(ev["event_id"])
        with pytest.raises(tasker.InvalidInput):
            bridge.get_task("not-a-uuid")
        with pytest.raises(tasker.TaskNotFound):
            bridge.get_task(str(uuid.uuid4()))
        with pytest.raises(tasker.TemplateNotFound):
            bridge.create_task({"namespace": "pytests", "name": "nope"})
        assert bridge.release_step_event(str(uuid.uuid4())) is False
    finally:
        assert bridge.shutdown(1000) == {"drained": 0, "released": 0}
    assert bridge.shutdown(1000) == {"drained": 0, "released": 0}, "shutdown is idempotent"
    with pytest.raises(tasker.WorkerClosed):
        bridge.poll_step_events(1, 10)
    with pytest.raises(tasker.WorkerClosed):
        bridge.get_task(str(uuid.uuid4()))


def test_release_hands_the_step_back(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url, namespaces=["pytests"], templates=[str(TEMPLATES_DIR)])
    try:
        task = bridge.create_task({"namespace": "pytests", "name": "slow", "context": {"seconds": 0}})
        events: List[Dict[str, Any]] = []
        while not events:
            events = bridge.poll_step_events(1, 1000)
        assert bridge.release_step_event(events[0]["event_id"]) is True
        again: List[Dict[str, Any]] = []
        while not again:
            again = bridge.poll_step_events(1, 1000)
        assert again[0]["step_uuid"] == events[0]["step_uuid"]
        assert again[0]["attempt"] == 1, "a release does not count the attempt"
        assert again[0]["event_id"] != events[0]["event_id"]
        bridge.complete_step_events([{"event_id": again[0]["event_id"], "success": True, "result": 1}])
        assert bridge.wait_for_task(task["task_uuid"], 10_000)["state"] == "complete"
    finally:
        bridge.shutdown(0)


def test_wait_timed_out_is_a_timeout_error(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url, templates=[str(TEMPLATES_DIR)])
    try:
        task = bridge.create_task({"namespace": "pytests", "name": "slow", "context": {"seconds": 0}})
        with pytest.raises(TimeoutError) as e:
            bridge.wait_for_task(task["task_uuid"], 100)
        assert isinstance(e.value, tasker.WaitTimedOut) and e.value.code == "wait_timed_out"
        with pytest.raises(tasker.InvalidInput):
            bridge.poll_step_events(1, 10)  # a client-only bridge has no events
    finally:
        bridge.shutdown(0)


def test_unserialisable_dict_becomes_invalid_result_not_a_spoiled_batch(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url, namespaces=["pytests"], concurrency=2, templates=[str(TEMPLATES_DIR)])
    try:
        t1 = bridge.create_task({"namespace": "pytests", "name": "slow", "context": {"seconds": 0}})
        t2 = bridge.create_task({"namespace": "pytests", "name": "slow", "context": {"seconds": 0}})
        events: List[Dict[str, Any]] = []
        while len(events) < 2:
            events += bridge.poll_step_events(2, 1000)
        bad, good = events
        report = bridge.complete_step_events(
            [
                {"event_id": bad["event_id"], "success": True, "result": {"x": object()}},
                {"event_id": good["event_id"], "success": True, "result": {"fine": True}},
            ]
        )
        assert report["accepted"] == 2
        views = {t["task_uuid"]: bridge.wait_for_task(t["task_uuid"], 10_000) for t in (t1, t2)}
        bad_view = views[bad["task_uuid"]]
        good_view = views[good["task_uuid"]]
        assert bad_view["steps"][0]["error"]["error_type"] == "invalid_result"
        assert good_view["steps"][0]["result"] == {"fine": True}
    finally:
        bridge.shutdown(0)
