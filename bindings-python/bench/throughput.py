"""End-to-end throughput of one-step tasks with a trivial Python handler, as a
share of the same run with core's Rust `noop` handler (the issue's target: at
least 80 %).

    python bench/throughput.py [--quick] [--tasks N] [--concurrency C]

Each phase gets a fresh SQLite file; N one-step tasks are created first through
a client-only bridge, then the clock runs from opening the worker until every
step has succeeded. The two sides alternate (three runs each, one with --quick)
and each keeps its best run, so one slow moment of a small VM does not decide the
comparison. Prints steps/s for both and their ratio:
  throughput_rust_steps_per_s, throughput_python_steps_per_s,
  python_throughput_share_of_rust
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import tasker

TEMPLATE = """\
namespace: bench
name: one_step
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: only
    handler: {{ callable: {callable} }}
"""


def prepare(folder: pathlib.Path, callable_name: str, tasks: int) -> str:
    templates = folder / "templates"
    templates.mkdir()
    (templates / "one_step.yaml").write_text(TEMPLATE.format(callable=callable_name))
    url = f"sqlite://{folder}/bench.db"
    client = tasker.Bridge(url, templates=[str(templates)])
    try:
        for _ in range(tasks):
            client.create_task({"namespace": "bench", "name": "one_step", "context": {}})
    finally:
        client.shutdown(0)
    return url


def wait_for(status, tasks: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while status()["succeeded"] < tasks:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {status()['succeeded']} of {tasks} steps finished in {timeout_s} s")
        time.sleep(0.002)


def rust_phase(tasks: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = prepare(pathlib.Path(tmp), "noop", tasks)
        t0 = time.perf_counter()
        bridge = tasker.Bridge(url, namespaces=["bench"], concurrency=concurrency, builtin_handlers=True)
        try:
            wait_for(bridge.worker_status, tasks)
            return tasks / (time.perf_counter() - t0)
        finally:
            bridge.shutdown(0)


def python_phase(tasks: int, concurrency: int) -> float:
    def noop(context: tasker.StepContext) -> object:
        return {"ok": True}

    with tempfile.TemporaryDirectory() as tmp:
        url = prepare(pathlib.Path(tmp), "bench.py_noop", tasks)
        t0 = time.perf_counter()
        worker = tasker.Worker(url, namespaces=["bench"], handlers={"bench.py_noop": noop}, concurrency=concurrency)
        with worker:
            wait_for(worker.status, tasks)
            return tasks / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (figures not meaningful)")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    tasks = args.tasks or (300 if args.quick else 10_000)
    rust = python = 0.0
    for _ in range(1 if args.quick else 3):
        rust = max(rust, rust_phase(tasks, args.concurrency))
        python = max(python, python_phase(tasks, args.concurrency))
    print(f"throughput_rust_steps_per_s={rust:.0f}", flush=True)
    print(f"throughput_python_steps_per_s={python:.0f}", flush=True)
    print(f"python_throughput_share_of_rust={python / rust:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
