"""Graceful shutdown: running handlers finish and their results are recorded
within the grace period; the rest is handed back to the queue (no attempt
counted); SIGTERM drains a worker run on the main thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tasker

from conftest import TEMPLATES_DIR, step


def _slow_handler(started: threading.Event) -> Any:
    @tasker.handler("slow")
    def slow(context: tasker.StepContext) -> Any:
        started.set()
        time.sleep(context.input("seconds"))
        return {"slept": context.input("seconds")}

    return slow


def test_running_handler_finishes_and_is_recorded(database_url: str) -> None:
    started = threading.Event()
    eng = tasker.Engine(
        database_url, templates=[TEMPLATES_DIR], handlers=[_slow_handler(started)], shutdown_grace_ms=10_000
    )
    eng.start()
    task = eng.create_task("pytests", "slow", {"seconds": 0.8})
    assert started.wait(10)
    report = eng.close()
    assert report == {"drained": 1, "released": 0}
    with pytest.raises(tasker.WorkerClosed):
        eng.get_task(task["task_uuid"])
    with tasker.Client(database_url) as client:
        after = client.get_task(task["task_uuid"])
    assert after["state"] == "complete", after
    assert step(after, "slow")["result"] == {"slept": 0.8}


def test_claimed_step_is_released_after_the_grace_period(database_url: str) -> None:
    started = threading.Event()
    eng = tasker.Engine(
        database_url, templates=[TEMPLATES_DIR], handlers=[_slow_handler(started)], shutdown_grace_ms=200
    )
    eng.start()
    task = eng.create_task("pytests", "slow", {"seconds": 3})
    assert started.wait(10)
    t0 = time.monotonic()
    report = eng.close()
    assert time.monotonic() - t0 < 2.5, "the drain did not wait for the handler past the grace period"
    assert report == {"drained": 0, "released": 1}
    with tasker.Client(database_url) as client:
        after = client.get_task(task["task_uuid"])
    s = step(after, "slow")
    assert s["state"] == "enqueued", s
    assert s["attempts"] == 0, "a released step does not count the attempt"
    assert s["result"] is None


def test_stop_from_another_thread_while_run_blocks(sqlite_url: str) -> None:
    worker = tasker.Worker(sqlite_url, namespaces=["pytests"], handlers=[], templates=[TEMPLATES_DIR])
    t = threading.Thread(target=worker.run)
    t.start()
    time.sleep(0.3)
    worker.stop()
    t.join(10)
    assert not t.is_alive()
    assert worker.drain_report == {"drained": 0, "released": 0}


def test_run_async(sqlite_url: str) -> None:
    import asyncio

    @tasker.handler("square")
    async def square(context: tasker.StepContext) -> Any:
        deps = context.dependency_results
        n = context.input("n") if not deps else next(iter(deps.values()))["value"]
        return {"value": n * n}

    from conftest import EXAMPLES_DIR

    async def main() -> Any:
        worker = tasker.Worker(sqlite_url, namespaces=["examples"], handlers=[square], templates=[EXAMPLES_DIR])
        runner = asyncio.ensure_future(worker.run_async())
        loop = asyncio.get_running_loop()
        with tasker.Client(sqlite_url) as client:
            created = await loop.run_in_executor(None, client.create_task, "examples", "linear", {"n": 2})
            done = await loop.run_in_executor(None, client.wait_for_task, created["task_uuid"], 30_000)
        worker.stop(wait=False)
        await asyncio.wait_for(runner, 10)
        return done

    task = asyncio.run(main())
    assert task["state"] == "complete"
    assert step(task, "step_4")["result"] == {"value": 65536}


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time, tasker

    @tasker.handler("slow")
    def slow(context):
        print("started", flush=True)
        time.sleep(context.input("seconds"))
        return {"slept": context.input("seconds")}

    worker = tasker.Worker(sys.argv[1], namespaces=["pytests"], handlers=[slow],
                           templates=[sys.argv[2]], shutdown_grace_ms=10000)
    worker.run()
    print("drained", worker.drain_report, flush=True)
    """
)


def test_sigterm_drains_a_worker_on_the_main_thread(sqlite_url: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SIGTERM_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), sqlite_url, str(TEMPLATES_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with tasker.Client(sqlite_url, templates=[TEMPLATES_DIR]) as client:
            task = client.create_task("pytests", "slow", {"seconds": 0.5})
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "started"
            os.kill(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert "drained {'drained': 1, 'released': 0}" in out, out + err
            after = client.get_task(task["task_uuid"])
        assert after["state"] == "complete"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
