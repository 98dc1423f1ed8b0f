"""How a step's handler is found and called: registration forms, handler.method,
import paths, initialization as config, one instance per callable."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, List

import tasker

import support_handlers
from conftest import EXAMPLES_DIR, TEMPLATES_DIR, step

CREATED: List[Any] = []


class Greeter(tasker.StepHandler):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        CREATED.append(self)

    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"said": self.config["greeting"], "method": "call"})

    def shout(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"said": self.config["greeting"].upper() + "!", "method": "shout"})

    async def whisper(self, context: tasker.StepContext) -> tasker.StepResult:
        await asyncio.sleep(0)
        return self.success({"said": self.config["greeting"].lower() + "...", "method": "whisper"})


def test_method_import_path_and_config(sqlite_url: str) -> None:
    CREATED.clear()
    support_handlers.INSTANCES.clear()
    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers={"greeter": Greeter}) as eng:
        task = eng.run("pytests", "dispatch", {}, timeout=30)
        eng.run("pytests", "dispatch", {}, timeout=30)
    assert step(task, "default_method")["result"] == {"said": "hello", "method": "call"}
    assert step(task, "other_method")["result"] == {"said": "HELLO!", "method": "shout"}
    assert step(task, "async_method")["result"] == {"said": "hello...", "method": "whisper"}
    missing = step(task, "missing_method")
    assert missing["error"]["error_type"] == "unknown_method"
    assert missing["error"]["retryable"] is False
    assert missing["attempts"] == 1
    assert "sing" in missing["error"]["message"]
    assert step(task, "imported")["result"] == {"factor": 7, "same_config": True}
    assert step(task, "imported_function")["result"] == {"imported": True, "step": "imported_function"}
    # One instance per callable and initialization, reused across steps and tasks:
    # greeter with {greeting: hello} (three steps x two tasks) and greeter without
    # initialization (missing_method): two instances.
    assert len(CREATED) == 2
    assert len(support_handlers.INSTANCES) == 1


def test_registration_forms() -> None:
    @tasker.handler("fn_name")
    def fn(ctx: Any) -> Any:
        return 1

    class Named(tasker.StepHandler):
        handler_name = "named"

    class Unnamed(tasker.StepHandler):
        pass

    reg = tasker.HandlerRegistry([fn, Named, Unnamed])
    assert "fn_name" in reg and "named" in reg
    assert f"{__name__}.test_registration_forms.<locals>.Unnamed" in reg.names()
    assert fn(None) == 1, "the decorator returns the function unchanged"
    reg2 = tasker.HandlerRegistry({"x": fn, "y": Named})
    assert reg2.names() == ["x", "y"]
    resolved = reg2.resolve("x", "call", {})
    assert not isinstance(resolved, tasker.StepResult) and resolved.plain_returns
    nf = reg2.resolve("zzz", "call", {})
    assert isinstance(nf, tasker.StepResult) and nf.error is not None
    assert nf.error.error_type == "handler_not_found" and "x, y" in nf.error.message
    helper = reg2.resolve("y", "success", {})
    assert isinstance(helper, tasker.StepResult) and helper.error is not None
    assert helper.error.error_type == "unknown_method", "helpers are not entry points"
    private = reg2.resolve("y", "_secret", {})
    assert isinstance(private, tasker.StepResult)


def test_sync_handlers_run_concurrently(sqlite_url: str) -> None:
    """concurrency=4: the four squares of the tree's second level run at once."""
    barrier = threading.Barrier(4, timeout=10)
    running: List[str] = []

    @tasker.handler("square")
    def square(context: tasker.StepContext) -> Any:
        if context.step_name.startswith("leaf_"):
            running.append(context.step_name)
            barrier.wait()  # breaks (BrokenBarrierError) unless 4 run together
        deps = context.dependency_results
        n = context.input("n") if not deps else next(iter(deps.values()))["value"]
        return {"value": n * n}

    @tasker.handler("sum")
    def total(context: tasker.StepContext) -> Any:
        return {"value": sum(r["value"] for r in context.dependency_results.values())}

    with tasker.Engine(sqlite_url, templates=[EXAMPLES_DIR], handlers=[square, total], concurrency=4) as eng:
        task = eng.run("examples", "tree", {"n": 2}, timeout=30)
    assert task["state"] == "complete", task
    assert step(task, "converge")["result"] == {"value": 1024}
    assert sorted(running) == ["leaf_a1", "leaf_a2", "leaf_b1", "leaf_b2"]



def test_an_engine_serves_the_namespaces_its_templates_steps_name(sqlite_url: str) -> None:
    template = os.path.join(TEMPLATES_DIR, "routed.yaml")

    @tasker.handler("where_am_i")
    def where_am_i(context: tasker.StepContext) -> Any:
        return {"namespace": context.namespace}

    with tasker.Engine(sqlite_url, templates=[template], handlers=[where_am_i]) as eng:
        assert eng.namespaces == ["pyrouted", "pyrouted.elsewhere", "pyrouted.flow"]
        task = eng.run("pyrouted", "routed", {}, timeout=30)
    assert task["state"] == "complete", task
    # Handlers see their template's namespace, wherever the step was routed.
    assert [s["result"] for s in task["steps"]] == [{"namespace": "pyrouted"}] * 3
