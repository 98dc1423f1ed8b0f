"""The context a handler receives, end to end and from a step_event."""

from __future__ import annotations

import logging
from typing import Any, Dict

import tasker

from conftest import TEMPLATES_DIR, step

EVENT: Dict[str, Any] = {
    "event_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "task_uuid": "0190a1b2-c3d4-7e5f-8a9b-000000000001",
    "step_uuid": "0190a1b2-c3d4-7e5f-8a9b-000000000002",
    "correlation_id": "0190a1b2-c3d4-7e5f-8a9b-000000000003",
    "namespace": "billing",
    "task_name": "refund",
    "task_version": "1.2.0",
    "step_name": "charge",
    "template_step_name": "charge",
    "step_type": "standard",
    "handler": {"callable": "billing.Charge", "method": "call", "initialization": {"currency": "EUR"}},
    "context": {"order_id": "A-1", "amount": 10},
    "dependency_results": {"validate": {"ok": True}},
    "attempt": 2,
    "max_attempts": 3,
    "retryable": True,
    "timeout_ms": 30000,
    "deadline_ms": 1767225600000,
    "checkpoint": None,
}


def test_context_from_event(caplog: Any) -> None:
    ctx = tasker.StepContext(EVENT)
    assert ctx.task_uuid == EVENT["task_uuid"] and ctx.step_uuid == EVENT["step_uuid"]
    assert ctx.correlation_id == EVENT["correlation_id"]
    assert (ctx.namespace, ctx.task_name, ctx.step_name) == ("billing", "refund", "charge")
    assert ctx.input("amount") == 10 and ctx.input("missing", "d") == "d"
    assert ctx.dependency("validate") == {"ok": True} and ctx.dependency("nope") is None
    assert ctx.config == {"currency": "EUR"}
    assert ctx.is_retry and not ctx.is_last_attempt
    assert ctx.checkpoint is None and ctx.deadline_ms == 1767225600000
    with caplog.at_level(logging.INFO, logger="tasker.handler"):
        ctx.logger.info("charging", extra={"amount": 10})
    rec = caplog.records[-1]
    assert rec.correlation_id == EVENT["correlation_id"]  # type: ignore[attr-defined]
    assert rec.step_name == "charge" and rec.task_uuid == EVENT["task_uuid"]  # type: ignore[attr-defined]
    assert rec.amount == 10  # type: ignore[attr-defined]


def test_context_end_to_end_with_checkpoint(sqlite_url: str) -> None:
    seen: Dict[str, Any] = {}

    @tasker.handler("inspect_context")
    def inspect_context(context: tasker.StepContext) -> Any:
        role = context.config["role"]
        if role == "child" and context.attempt == 1:
            context.save_checkpoint(41, {"sum": 99})
            deadline = context.extend_lease()
            assert deadline >= context.deadline_ms - 1
            context.publish("pytests.child_checkpointed", {"cursor": 41})
            raise tasker.RetryableError("resume from the checkpoint")
        seen[f"{role}:{context.attempt}"] = {
            "context": context.context,
            "deps": context.dependency_results,
            "config": context.config,
            "attempt": context.attempt,
            "max_attempts": context.max_attempts,
            "is_retry": context.is_retry,
            "is_last_attempt": context.is_last_attempt,
            "checkpoint": context.checkpoint,
            "namespace": context.namespace,
            "task_name": context.task_name,
            "correlation_id": context.correlation_id,
            "task_uuid": context.task_uuid,
        }
        return {"role": role}

    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers=[inspect_context]) as eng:
        task = eng.run("pytests", "context", {"order": 7}, timeout=30)
    assert task["state"] == "complete", task
    parent, child = seen["parent:1"], seen["child:2"]
    assert parent["context"] == {"order": 7} and parent["deps"] == {}
    assert parent["config"] == {"role": "parent", "limits": [1, 2]}
    assert parent["checkpoint"] is None and not parent["is_retry"]
    assert child["deps"] == {"parent": {"role": "parent"}}
    assert child["is_retry"] and child["is_last_attempt"] and child["max_attempts"] == 2
    assert child["checkpoint"]["cursor"] == 41 and child["checkpoint"]["data"] == {"sum": 99}
    assert (child["namespace"], child["task_name"]) == ("pytests", "context")
    assert child["correlation_id"] == task["correlation_id"] and child["task_uuid"] == task["task_uuid"]
    assert step(task, "child")["attempts"] == 2
