"""Result helpers and the Decision / Batchable shapes (identical to core's Rust traits)."""

from __future__ import annotations

import json
import math

import pytest

import tasker
from tasker.result import encode_result


class Analyzer(tasker.StepHandler, tasker.Batchable, tasker.Decision):
    pass


def test_create_batches_matches_the_rust_shape() -> None:
    r = Analyzer().create_batches(1000, 300)
    assert r.success
    assert r.result == {
        "batch_processing_outcome": {
            "type": "create_batches",
            "total_items": 1000,
            "cursor_configs": [
                {"batch_id": "001", "start_cursor": 0, "end_cursor": 300},
                {"batch_id": "002", "start_cursor": 300, "end_cursor": 600},
                {"batch_id": "003", "start_cursor": 600, "end_cursor": 900},
                {"batch_id": "004", "start_cursor": 900, "end_cursor": 1000},
            ],
        }
    }
    assert Analyzer().create_batches(0, 10).result["batch_processing_outcome"]["cursor_configs"] == []
    assert len(Analyzer().create_batches(5, 0).result["batch_processing_outcome"]["cursor_configs"]) == 5
    assert Analyzer().no_batches().result == {"batch_processing_outcome": {"type": "no_batches"}}


def test_create_batches_without_a_size_leaves_the_cut_to_the_template() -> None:
    assert Analyzer().create_batches(1000).result == {
        "batch_processing_outcome": {"type": "create_batches", "total_items": 1000}
    }


def test_decision_shapes() -> None:
    a = Analyzer()
    assert a.create_steps("left", "right").result == {
        "decision_point_outcome": {"type": "create_steps", "step_names": ["left", "right"]}
    }
    assert a.create_steps(["x"]).result["decision_point_outcome"]["step_names"] == ["x"]
    assert a.no_branches().result == {"decision_point_outcome": {"type": "no_branches"}}


def test_cursor_range_and_checkpoint_resume() -> None:
    from test_context import EVENT

    ev = dict(
        EVENT,
        handler={
            "callable": "w",
            "method": "call",
            "initialization": {"cursor": {"batch_id": "002", "start_cursor": 300, "end_cursor": 600}},
        },
    )
    assert tasker.StepContext(ev).cursor_range() == (300, 600)
    ev["checkpoint"] = {"cursor": 450, "data": {}, "saved_at_ms": 1}
    assert tasker.StepContext(ev).cursor_range() == (450, 600)
    with pytest.raises(LookupError):
        tasker.StepContext(EVENT).cursor_range()
    # From the analyzer's result: batch 002 of template step process_batch.
    plan = Analyzer().create_batches(1000, 300).result
    ev = dict(
        EVENT,
        step_name="process_batch_002",
        template_step_name="process_batch",
        dependency_results={"plan": plan},
        checkpoint=None,
    )
    assert tasker.StepContext(ev).cursor_range() == (300, 600)
    ev["checkpoint"] = {"cursor": 9999, "data": None, "saved_at_ms": 1}
    assert tasker.StepContext(ev).cursor_range() == (600, 600), "never past the end"


def test_failure_helper() -> None:
    h = tasker.StepHandler()
    f = h.failure("nope", retry_after=1.25, code=7)
    assert f.error is not None
    assert (f.error.retryable, f.error.retry_after_ms, f.error.code, f.error.error_type) == (
        True,
        1250,
        "7",
        "handler_error",
    )
    p = h.failure("nope", retryable=False, retry_after=3)
    assert p.error is not None and p.error.retry_after_ms is None, "no retry hint on a permanent failure"
    with pytest.raises(ValueError):
        h.failure("x", retry_after=-1)
    s = h.success({"a": 1}, metadata={"m": 2})
    assert s.to_dict() == {"success": True, "result": {"a": 1}, "metadata": {"m": 2}}


def test_encode_result() -> None:
    eid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    ok = json.loads(encode_result(eid, tasker.success({"v": 1}), 12))
    assert ok == {"event_id": eid, "success": True, "result": {"v": 1}, "execution_time_ms": 12}
    fail = json.loads(encode_result(eid, tasker.failure("m", "t", retry_after=0.5)))
    assert fail["error"] == {"message": "m", "error_type": "t", "retryable": True, "retry_after_ms": 500}
    assert "result" in fail and fail["result"] is None
    for bad in (
        tasker.success(object()),
        tasker.success({"x": math.inf}),
        tasker.success({1: {2: object()}}),
        "not a result",
        tasker.StepResult(False),
        tasker.failure("m", metadata={"o": object()}),
    ):
        inv = json.loads(encode_result(eid, bad))
        assert inv["success"] is False
        assert inv["error"]["error_type"] == "invalid_result" and inv["error"]["retryable"] is False


def test_exceptions_follow_the_failure_table() -> None:
    from tasker.result import failure_from_exception

    class Declined(tasker.PermanentError):
        pass

    p = failure_from_exception(Declined("no", code="E1")).error
    assert p is not None and (p.error_type, p.retryable, p.code) == ("Declined", False, "E1")
    r = failure_from_exception(tasker.RetryableError("later", retry_after=2)).error
    assert r is not None and (r.error_type, r.retryable, r.retry_after_ms) == ("RetryableError", True, 2000)
    try:
        {}["k"]
    except KeyError as e:
        k = failure_from_exception(e).error
    assert k is not None and (k.error_type, k.retryable) == ("KeyError", True)
    assert k.backtrace is not None and "Traceback" in k.backtrace


def test_broken_exceptions_still_fail_the_step() -> None:
    from tasker.result import failure_from_exception

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    f = failure_from_exception(Unprintable()).error
    assert f is not None and f.error_type == "Unprintable" and f.retryable
    nan_hint = failure_from_exception(tasker.RetryableError("x", retry_after=math.nan)).error
    assert nan_hint is not None and nan_hint.retryable and nan_hint.retry_after_ms is None
