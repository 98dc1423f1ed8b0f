"""tasker.EventSubscriber and explicit publishes: durable delivery with the step's
result, at-least-once redelivery without an ack, independent consumers, schema
rejection, and a poll that releases the GIL; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict, List

import pytest

import tasker

from conftest import GOLDEN_DIR, TEMPLATES_DIR


@tasker.handler("publish")
def publish(context: tasker.StepContext) -> Dict[str, Any]:
    try:
        context.publish("pytests.shipped", {"id": "seven"}, "durable")
        rejected = ""
    except tasker.InvalidInput as e:
        rejected = str(e)
    context.publish("pytests.shipped", {"id": 7}, "broadcast")
    return {"rejected": rejected}


def golden_keys() -> List[List[str]]:
    manifest = json.loads((GOLDEN_DIR / "manifest.json").read_text(encoding="utf-8"))
    files = [e["file"] for e in manifest if e["schema"] == "stored_domain_event" and e["valid"]]
    assert files, "no valid stored_domain_event golden file"
    return [sorted(json.loads((GOLDEN_DIR / f).read_text(encoding="utf-8"))) for f in files]


def test_durable_events_are_delivered_at_least_once(database_url: str) -> None:
    with tasker.Engine(database_url, templates=[TEMPLATES_DIR / "events.yaml"], handlers=[publish]) as engine:
        task = engine.run("pytests", "events", {})
        assert task["state"] == "complete"
        result = task["steps"][0]["result"]
        assert "fails the declared schema" in result["rejected"], result
        billing = tasker.EventSubscriber(engine.bridge, "py-billing")
        events = billing.poll(10, 5000)
        assert [e["name"] for e in events] == ["pytests.noted", "pytests.shipped"]
        assert events[1]["payload"] == {"id": 7} and events[1]["mode"] == "broadcast"
        assert events[1]["task_uuid"] == task["task_uuid"]
        assert events[0]["sequence"] < events[1]["sequence"]
        for keys in golden_keys():
            assert sorted(events[0]) == keys
        assert billing.poll(10, 0) == [], "the session moved past what it handed out"
        # Not acknowledged: a new subscriber of the same consumer gets them again.
        again = tasker.EventSubscriber(engine.bridge, "py-billing").poll(10, 1000)
        assert [e["sequence"] for e in again] == [e["sequence"] for e in events]
        assert billing.ack(events[0]["sequence"]) == events[0]["sequence"]
        billing.rewind()
        assert [e["name"] for e in billing.poll(10, 0)] == ["pytests.shipped"]
        billing.ack(events[1]["sequence"])
        assert tasker.EventSubscriber(engine.bridge, "py-billing").poll(10, 0) == []
        # Other consumers are independent; a name pattern filters.
        audit = tasker.EventSubscriber(engine.bridge, "py-audit", name_pattern="*.shipped")
        assert [e["name"] for e in audit.poll(10, 0)] == ["pytests.shipped"]
        first = next(iter(tasker.EventSubscriber(engine.bridge, "py-iter")))
        assert first["name"] == "pytests.noted"


def test_an_explicit_publish_without_a_step_is_stored_at_once(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url)
    try:
        event = bridge.publish_domain_event("pytests.ping", [1, 2], "durable")
        got = tasker.EventSubscriber(bridge, "py-ping").poll(10, 0)
        assert [(e["event_id"], e["payload"], e["step_uuid"]) for e in got] == [(event["event_id"], [1, 2], None)]
        with pytest.raises(tasker.InvalidInput):
            tasker.EventSubscriber(bridge, "")
    finally:
        bridge.shutdown(0)


def test_a_subscriber_poll_releases_the_gil(sqlite_url: str) -> None:
    bridge = tasker.Bridge(sqlite_url)
    try:
        subscriber = tasker.EventSubscriber(bridge, "py-idle")
        ticks = 0
        stop = threading.Event()

        def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.01)

        t = threading.Thread(target=tick)
        t.start()
        assert subscriber.poll(10, 500) == []
        stop.set()
        t.join()
        assert ticks >= 10, f"the other thread ticked only {ticks} times during the poll"
    finally:
        bridge.shutdown(0)
