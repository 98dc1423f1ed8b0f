"""The golden files of proto-contract/golden, walked from manifest.json (never a
hand-kept list): step events build contexts; valid step results go through the
result encoder unchanged and are accepted by the Bridge; invalid ones are recorded
as invalid_result (or rejected when they name no usable event); task requests are
accepted or refused by create_task."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import tasker
from tasker.result import StepResult, encode_result

from conftest import GOLDEN_DIR, TEMPLATES_DIR


def manifest() -> List[Dict[str, Any]]:
    path = GOLDEN_DIR / "manifest.json"
    assert path.exists(), f"no golden manifest at {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def load(entry: Dict[str, Any]) -> Any:
    return json.loads((GOLDEN_DIR / entry["file"]).read_text(encoding="utf-8"))


def entries(schema: str, valid: bool) -> List[Dict[str, Any]]:
    return [e for e in manifest() if e["schema"] == schema and e["valid"] is valid]


def test_manifest_covers_every_file() -> None:
    listed = {e["file"] for e in manifest()}
    on_disk = {str(p.relative_to(GOLDEN_DIR)) for p in GOLDEN_DIR.rglob("*.json") if p.name != "manifest.json"}
    assert listed == on_disk
    assert entries("step_event", True) and entries("step_result", True) and entries("step_result", False)


def _walk(value: Any) -> None:
    """Touches every member (nothing lazily broken)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _walk(v)
    elif isinstance(value, list):
        for v in value:
            _walk(v)


@pytest.mark.parametrize("entry", entries("step_event", True), ids=lambda e: e["file"])
def test_valid_step_event_builds_a_context(entry: Dict[str, Any]) -> None:
    ev = load(entry)
    ctx = tasker.StepContext(ev)
    assert ctx.event_id == ev["event_id"] and ctx.task_uuid == ev["task_uuid"]
    assert ctx.step_uuid == ev["step_uuid"] and ctx.correlation_id == ev["correlation_id"]
    assert (ctx.namespace, ctx.task_name, ctx.task_version) == (ev["namespace"], ev["task_name"], ev["task_version"])
    assert (ctx.step_name, ctx.template_step_name, ctx.step_type) == (
        ev["step_name"],
        ev["template_step_name"],
        ev["step_type"],
    )
    assert ctx.handler_callable == ev["handler"]["callable"] and ctx.handler_method == ev["handler"]["method"]
    assert ctx.config == ev["handler"]["initialization"]
    assert ctx.context == ev["context"] and ctx.dependency_results == ev["dependency_results"]
    for name, result in ev["dependency_results"].items():
        assert ctx.dependency(name) == result
    for key, value in ev["context"].items():
        assert ctx.input(key) == value
    assert (ctx.attempt, ctx.max_attempts, ctx.retryable) == (ev["attempt"], ev["max_attempts"], ev["retryable"])
    assert (ctx.timeout_ms, ctx.deadline_ms) == (ev["timeout_ms"], ev["deadline_ms"])
    assert ctx.checkpoint == ev["checkpoint"]
    assert ctx.is_retry == (ev["attempt"] > 1)
    _walk(ctx.context)
    # Strings survive byte for byte (the unicode file): re-encoding gives the same JSON.
    assert json.loads(json.dumps(ctx.context, ensure_ascii=False)) == ev["context"]
    if ev["checkpoint"] is not None:
        assert ctx.checkpoint["cursor"] == ev["checkpoint"]["cursor"]
        assert ctx.checkpoint["data"] == ev["checkpoint"]["data"]
    if ev["step_type"] == "batch_worker":
        start, end = ctx.cursor_range()
        assert 0 <= start <= end


@pytest.mark.parametrize("entry", entries("step_event", False), ids=lambda e: e["file"])
def test_invalid_step_event(entry: Dict[str, Any]) -> None:
    ev = load(entry)
    if "event_id" not in ev:
        with pytest.raises(KeyError):
            tasker.StepContext(ev)
    else:
        # The core never sends these; a context still builds from the known members.
        assert tasker.StepContext(ev).event_id == ev["event_id"]


@pytest.mark.parametrize("entry", entries("step_result", True), ids=lambda e: e["file"])
def test_valid_step_result_round_trips_through_the_encoder(entry: Dict[str, Any]) -> None:
    msg = load(entry)
    encoded = json.loads(encode_result(msg["event_id"], StepResult.from_dict(msg), msg.get("execution_time_ms")))
    expected = dict(msg)
    expected.setdefault("result", None)
    assert encoded == expected


def _held_events(bridge: tasker.Bridge, n: int) -> List[Dict[str, Any]]:
    for _ in range(n):
        bridge.create_task({"namespace": "pytests", "name": "golden", "context": {}})
    events: List[Dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(events) < n and time.monotonic() < deadline:
        events += bridge.poll_step_events(n - len(events), 500)
    assert len(events) == n
    return events


def test_step_results_through_the_bridge(tmp_path: Path) -> None:
    valid = entries("step_result", True)
    invalid = entries("step_result", False)
    bridge = tasker.Bridge(
        f"sqlite://{tmp_path / 'golden.db'}",
        namespaces=["pytests"],
        concurrency=len(valid) + len(invalid),
        templates=[str(TEMPLATES_DIR)],
    )
    try:
        events = _held_events(bridge, len(valid) + len(invalid))
        sent: List[Dict[str, Any]] = []
        expectations: List[Any] = []
        for entry, ev in zip(valid + invalid, events):
            msg = copy.deepcopy(load(entry))
            usable = isinstance(msg, dict) and "event_id" in msg and _is_uuid(msg["event_id"])
            if usable:
                msg["event_id"] = ev["event_id"]
            sent.append(msg)
            expectations.append((entry, ev, usable))
        report = bridge.complete_step_events(sent)

        invalid_ids = {i["event_id"] for i in report["invalid"]}
        rejected = report["rejected"]
        for entry, ev, usable in expectations:
            if entry["valid"]:
                assert ev["event_id"] not in invalid_ids, entry
            elif usable:
                assert ev["event_id"] in invalid_ids, f"{entry['file']} was not recorded as invalid_result"
        unusable = [e for e, _, usable in expectations if not usable]
        assert len(rejected) == len(unusable)
        assert report["accepted"] == len(sent) - len(rejected)

        for entry, ev, usable in expectations:
            task = bridge.wait_for_task(ev["task_uuid"], 10_000) if usable else None
            if task is None:
                # Its event was never answered: release it so the task is not left hanging.
                assert bridge.release_step_event(ev["event_id"])
                continue
            (step,) = task["steps"]
            msg = load(entry)
            if entry["valid"] and msg["success"]:
                assert step["state"] == "complete" and step["result"] == msg.get("result"), entry
            elif entry["valid"]:
                assert step["error"]["error_type"] == msg["error"]["error_type"], entry
            else:
                assert step["state"] == "error", entry
                assert step["error"]["error_type"] == "invalid_result", entry
                assert step["error"]["retryable"] is False
    finally:
        bridge.shutdown(0)


def _is_uuid(value: Any) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


@pytest.mark.parametrize(
    "entry", entries("task_request", True) + entries("task_request", False), ids=lambda e: e["file"]
)
def test_task_requests(entry: Dict[str, Any], tmp_path: Path) -> None:
    bridge = tasker.Bridge(f"sqlite://{tmp_path / 'req.db'}")
    try:
        request = load(entry)
        expected = tasker.TemplateNotFound if entry["valid"] else tasker.InvalidInput
        with pytest.raises(expected):  # valid requests name templates this database does not have
            bridge.create_task(request)
    finally:
        bridge.shutdown(0)
