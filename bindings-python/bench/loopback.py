"""What the Python binding costs per step, on a loopback bridge (synthetic step
events, results dropped, no database work): the figures to set beside
`tasker-bench --bridge` (the same loop in Rust).

    python bench/loopback.py [--quick]

Prints, in microseconds per step:
  bridge_python_us_per_step_batch{1,64}  poll -> json.loads -> build results -> json.dumps -> complete,
                                         through tasker.Bridge (the FFI layer and the stdlib json)
  worker_python_us_per_step_{sync,async} the whole tasker.Worker path: poller, context, thread pool or
                                         asyncio loop, result encoder, batched completer
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import tasker


def bridge_loop(batch: int, steps: int) -> float:
    bridge = tasker.Bridge.loopback(batch)
    native = bridge.native

    def run(n: int) -> int:
        done = 0
        while done < n:
            events = json.loads(native.poll_step_events(batch, 1000))
            results = [{"event_id": e["event_id"], "success": True, "result": {"value": 1}} for e in events]
            native.complete_step_events(json.dumps(results))
            done += len(results)
        return done

    try:
        run(max(steps // 10, batch))
        t0 = time.perf_counter()
        done = run(steps)
        return (time.perf_counter() - t0) * 1e6 / done
    finally:
        bridge.shutdown(0)


class _Counting:
    """Wraps the loopback bridge and counts results sent."""

    def __init__(self, bridge: tasker.Bridge) -> None:
        self.bridge = bridge
        self.sent = 0
        self.lock = threading.Lock()
        self.reached = threading.Event()
        self.target = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.bridge, name)

    def complete_step_events_json(self, text: str) -> object:
        report = self.bridge.complete_step_events_json(text)
        with self.lock:
            self.sent += text.count('"event_id"')
            if self.target and self.sent >= self.target:
                self.reached.set()
        return report


def worker_loop(style: str, steps: int, concurrency: int = 8) -> float:
    if style == "sync":

        def handler(context: tasker.StepContext) -> object:
            return {"value": 1}

    else:

        async def handler(context: tasker.StepContext) -> object:  # type: ignore[misc]
            return {"value": 1}

    counting = _Counting(tasker.Bridge.loopback(concurrency))
    worker = tasker.Worker(handlers={"loopback": handler}, concurrency=concurrency, bridge=counting)
    with worker:
        counting.target = max(steps // 10, concurrency)
        counting.reached.wait(120)
        with counting.lock:
            start_count = counting.sent
            counting.target = start_count + steps
            counting.reached.clear()
        t0 = time.perf_counter()
        counting.reached.wait(300)
        elapsed = time.perf_counter() - t0
        with counting.lock:
            done = counting.sent - start_count
    return elapsed * 1e6 / max(done, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (figures not meaningful)")
    args = parser.parse_args()
    steps = 2_000 if args.quick else 100_000
    for batch in (1, 64):
        print(f"bridge_python_us_per_step_batch{batch}={bridge_loop(batch, steps):.2f}", flush=True)
    for style in ("sync", "async"):
        print(f"worker_python_us_per_step_{style}={worker_loop(style, steps // 2):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
