"""``tasker.Worker``: runs Python handlers for the steps of some namespaces.

Threads:

* one **poller** calls ``bridge.poll_step_events(max_events=free slots, ...)``
  (the GIL is released while it waits) and hands each event to its handler; it
  also forwards the core's log records to ``logging``;
* a pool of ``concurrency`` threads runs plain ``def`` handlers; one asyncio loop,
  in its own thread, runs ``async def`` handlers;
* one **completer** sends results in batches (everything waiting, one
  ``complete_step_events`` call) and fails handlers that pass their deadline with
  ``timeout``.

A slot is busy from the poll that claimed the step until its result is sent and
its handler has returned: a ``def`` handler that overran its deadline keeps its
thread (Python cannot stop it) and its slot until it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import queue
import signal
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _logging
from .bridge import Bridge
from .context import StepContext
from .errors import ForkedProcess, TaskerError, WorkerClosed
from .registry import HandlerRegistry, HandlersArg, Resolved
from .result import StepResult, encode_result, failure_from_exception, invalid_result_json, success

__all__ = ["Worker"]

log = logging.getLogger("tasker.worker")


# An async handler still running this long after its deadline is cancelled (the
# bridge has recorded the timeout by then; its sweep runs every 100 ms).
_CANCEL_GRACE_MS = 200


# How long the completer waits for handlers still running before it sends the
# results it has (so results of one poll usually share one write).
COMPLETION_LINGER_S = 0.001


def _now_ms() -> int:
    return int(time.time() * 1000)


class _InFlight:
    __slots__ = ("event_id", "ctx", "started", "future", "settled", "sent", "handler_done", "is_async")

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.ctx: Optional[StepContext] = None
        self.started = time.monotonic()
        self.future: Optional[concurrent.futures.Future] = None  # type: ignore[type-arg]
        self.settled = False
        self.sent = False
        self.handler_done = False
        self.is_async = False


class Worker:
    """Runs Python handlers for the steps of ``namespaces``.

    ``handlers``: a list of handler classes / ``@tasker.handler`` functions, or a
    dict ``{callable: handler}``. A step's ``handler.callable`` is looked up there
    first, then imported as ``package.module.ClassName``.

    ``worker.run()`` blocks until SIGTERM/SIGINT (on the main thread) or
    ``worker.stop()``, then drains; ``await worker.run_async()`` does the same in
    an asyncio program; ``with worker:`` runs it in the background.
    """

    def __init__(
        self,
        database_url: Optional[str] = None,
        namespaces: Sequence[str] = (),
        handlers: HandlersArg = None,
        concurrency: int = 8,
        *,
        templates: Optional[Sequence[str]] = None,
        poll_timeout_ms: int = 200,
        shutdown_grace_ms: int = 30000,
        log_level: Optional[str] = None,
        bridge: Any = None,
        **bridge_options: Any,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if bridge is None and not namespaces:
            raise ValueError("a Worker needs the namespaces whose steps it runs (namespaces=[...])")
        self.concurrency = int(concurrency)
        self.namespaces = list(namespaces)
        self.poll_timeout_ms = int(poll_timeout_ms)
        self.shutdown_grace_ms = int(shutdown_grace_ms)
        self.registry = handlers if isinstance(handlers, HandlerRegistry) else HandlerRegistry(handlers)
        if bridge is None:
            url = database_url or os.environ.get("TASKER_DATABASE_URL") or "sqlite://tasker.db"
            _logging.install(log_level)
            bridge = Bridge(
                url,
                namespaces=self.namespaces,
                concurrency=self.concurrency,
                templates=templates,
                **bridge_options,
            )
        self.bridge = bridge
        self.drain_report: Optional[Dict[str, Any]] = None

        self._cond = threading.Condition()
        self._inflight: Dict[str, _InFlight] = {}
        self._unsettled = 0  # dispatched events whose result is not yet queued
        self._results: "queue.Queue[Tuple[_InFlight, str]]" = queue.Queue()
        self._stop_requested = threading.Event()
        self._stop_polling = threading.Event()
        self._stop_completer = threading.Event()
        self._done = threading.Event()
        self._started = False
        self._shut_down = False
        self._lifecycle = threading.Lock()
        self._run_thread: Optional[threading.Thread] = None
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        self._poller: Optional[threading.Thread] = None
        self._completer: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "Worker":
        """Starts the threads and returns at once (``stop()`` drains)."""
        with self._lifecycle:
            if self._shut_down:
                raise RuntimeError("this worker has been stopped; create a new one")
            if self._started:
                return self
            self._started = True
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="tasker-handler"
            )
            self._loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run_loop() -> None:
                assert self._loop is not None
                asyncio.set_event_loop(self._loop)
                self._loop.call_soon(ready.set)
                self._loop.run_forever()

            self._loop_thread = threading.Thread(target=run_loop, name="tasker-asyncio", daemon=True)
            self._loop_thread.start()
            ready.wait()
            self._completer = threading.Thread(target=self._complete_loop, name="tasker-completer", daemon=True)
            self._completer.start()
            self._poller = threading.Thread(target=self._poll_loop, name="tasker-poller", daemon=True)
            self._poller.start()
        return self

    def run(self) -> None:
        """Runs until SIGTERM/SIGINT (when called on the main thread) or ``stop()``,
        then drains gracefully."""
        self.start()
        self._run_thread = threading.current_thread()
        previous: Dict[Any, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self._stop_requested.set())
        try:
            while not self._stop_requested.wait(0.1):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            try:
                self._shutdown()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self._run_thread = None

    async def run_async(self) -> None:
        """``run()`` for asyncio programs: returns after SIGTERM/SIGINT (main thread) or
        ``stop()`` and the drain. Cancelling it drains too."""
        loop = asyncio.get_running_loop()
        self.start()
        installed: List[Any] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self._stop_requested.set)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        self._run_thread = threading.current_thread()
        try:
            while not self._stop_requested.is_set():
                await asyncio.sleep(0.05)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            self._stop_requested.set()
            await loop.run_in_executor(None, self._shutdown)
            self._run_thread = None

    def stop(self, wait: bool = True) -> None:
        """Asks the worker to stop. When ``run()`` runs in another thread, it drains
        and ``stop`` waits for it (unless ``wait=False``); otherwise the drain happens
        here."""
        self._stop_requested.set()
        me = threading.current_thread()
        if me.name.startswith("tasker-handler") or me is self._loop_thread:
            wait = False  # a handler stopping its own worker: the drain waits for it
        run_thread = self._run_thread
        if run_thread is not None and run_thread is not threading.current_thread():
            if wait:
                self._done.wait()
            return
        if run_thread is None:
            if wait:
                self._shutdown()
            else:
                threading.Thread(target=self._shutdown, name="tasker-stop", daemon=True).start()

    close = stop

    def __enter__(self) -> "Worker":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def status(self) -> Dict[str, Any]:
        """The bridge's counters plus what runs in Python now."""
        st = dict(self.bridge.worker_status())
        st["python_in_flight"] = len(self._inflight)
        return st

    @property
    def in_flight(self) -> int:
        """Steps claimed and not yet finished here."""
        return len(self._inflight)

    def _shutdown(self) -> None:
        with self._lifecycle:
            if self._shut_down:
                return
            self._shut_down = True
            started = self._started
        self._stop_requested.set()
        try:
            if not started:
                self.drain_report = self._bridge_shutdown()
                return
            self._stop_polling.set()
            # The bridge stops claiming, waits for the results of claimed steps
            # (the completer keeps sending them meanwhile), releases the rest.
            self.drain_report = self._bridge_shutdown()
            if self._poller is not None:
                self._poller.join()
            self._stop_completer.set()
            if self._completer is not None:
                self._completer.join()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            loop = self._loop
            if loop is not None and not loop.is_closed():

                def cancel_all() -> None:
                    for task in asyncio.all_tasks(loop):
                        task.cancel()
                    loop.call_soon(loop.stop)

                loop.call_soon_threadsafe(cancel_all)
                if self._loop_thread is not None:
                    self._loop_thread.join(timeout=5)
                if not loop.is_running():
                    loop.close()
            _logging.drain()
            log.info("worker stopped: %s", self.drain_report)
        finally:
            self._done.set()

    def _bridge_shutdown(self) -> Dict[str, Any]:
        try:
            return dict(self.bridge.shutdown(self.shutdown_grace_ms))
        except (WorkerClosed, ForkedProcess) as e:
            log.debug("bridge already closed: %s", e)
            return {"drained": 0, "released": 0}

    # -- polling and dispatch -------------------------------------------------------

    def _free_slots(self) -> int:
        return self.concurrency - len(self._inflight)

    def _poll_loop(self) -> None:
        backoff = 0.1
        while not self._stop_polling.is_set():
            free = self._free_slots()
            if free <= 0:
                with self._cond:
                    self._cond.wait_for(lambda: self._free_slots() > 0 or self._stop_polling.is_set(), timeout=0.2)
                _logging.drain()
                continue
            try:
                events = self.bridge.poll_step_events(free, self.poll_timeout_ms)
                backoff = 0.1
            except (WorkerClosed, ForkedProcess):
                break
            except TaskerError as e:
                log.error("polling failed (%s): %s; retrying in %.1fs", getattr(e, "code", "?"), e, backoff)
                self._stop_polling.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:  # noqa: BLE001 - the poller must survive anything
                log.exception("polling failed; retrying in %.1fs", backoff)
                self._stop_polling.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for event in events:
                self._dispatch(event)
            _logging.drain()
        _logging.drain()

    def _dispatch(self, event: Mapping[str, Any]) -> None:
        event_id = str(event.get("event_id"))
        item = _InFlight(event_id)
        with self._cond:
            self._inflight[event_id] = item
            self._unsettled += 1
        try:
            ctx = StepContext(event, self.bridge)
            item.ctx = ctx
            resolved = self.registry.resolve(ctx.handler_callable, ctx.handler_method, ctx.config)
        except Exception as e:  # noqa: BLE001 - a step is never lost
            log.exception("cannot start step event %s", event_id)
            self._settle(item, failure_from_exception(e))
            self._handler_finished(item)
            return
        if isinstance(resolved, StepResult):
            self._settle(item, resolved)
            self._handler_finished(item)
            return
        item.is_async = resolved.is_async
        if resolved.is_async:
            assert self._loop is not None
            item.future = asyncio.run_coroutine_threadsafe(self._run_async(item, resolved, ctx), self._loop)
        else:
            assert self._pool is not None
            try:
                item.future = self._pool.submit(self._run_sync, item, resolved, ctx)
            except RuntimeError as e:  # pool shut down under us
                self._settle(item, failure_from_exception(e))
                self._handler_finished(item)

    def _outcome(self, value: Any, resolved: Resolved) -> Any:
        if isinstance(value, StepResult):
            return value
        if resolved.plain_returns:
            return success(value)
        return value  # encode_result records a non-StepResult as invalid_result

    def _run_sync(self, item: _InFlight, resolved: Resolved, ctx: StepContext) -> None:
        try:
            value = resolved.fn(ctx)
            if inspect.isawaitable(value):
                assert self._loop is not None
                value = asyncio.run_coroutine_threadsafe(_await(value), self._loop).result()
            outcome = self._outcome(value, resolved)
        except BaseException as e:  # noqa: BLE001 - the failure table covers every exception
            outcome = failure_from_exception(e)
        try:
            self._settle(item, outcome)
        finally:
            self._handler_finished(item)

    async def _run_async(self, item: _InFlight, resolved: Resolved, ctx: StepContext) -> None:
        try:
            value = await resolved.fn(ctx)
            outcome = self._outcome(value, resolved)
        except asyncio.CancelledError:
            # Past its deadline (the bridge records the timeout) or shutting down
            # (the bridge releases the step): no result from here.
            with self._cond:
                if not item.settled:
                    self._unsettled -= 1
                item.settled = True
                item.sent = True
            self._handler_finished(item)
            raise
        except BaseException as e:  # noqa: BLE001
            outcome = failure_from_exception(e)
        try:
            self._settle(item, outcome)
        finally:
            self._handler_finished(item)

    # -- results ---------------------------------------------------------------------

    def _settle(self, item: _InFlight, outcome: Any) -> bool:
        """Records the one result of an event (the first of handler result and timeout)."""
        with self._cond:
            if item.settled:
                return False
            item.settled = True
            self._unsettled -= 1
        elapsed_ms = int((time.monotonic() - item.started) * 1000)
        try:
            text = encode_result(item.event_id, outcome, elapsed_ms)
        except Exception as e:  # noqa: BLE001 - a step is never lost
            text = invalid_result_json(item.event_id, f"the result could not be encoded: {e!r}", elapsed_ms)
        self._results.put((item, text))
        return True

    def _handler_finished(self, item: _InFlight) -> None:
        with self._cond:
            item.handler_done = True
            self._maybe_release(item)

    def _maybe_release(self, item: _InFlight) -> None:
        # Holding self._cond.
        if item.handler_done and item.sent and self._inflight.get(item.event_id) is item:
            del self._inflight[item.event_id]
            self._cond.notify_all()

    def _check_deadlines(self) -> float:
        """Cancels ``async def`` handlers past their deadline (the bridge records the
        ``timeout`` failure itself); returns seconds until the next check."""
        now = _now_ms()
        nearest = 0.05
        expired: List[_InFlight] = []
        with self._cond:
            for item in self._inflight.values():
                if item.settled or item.ctx is None or not item.ctx.deadline_ms:
                    continue
                left = item.ctx.deadline_ms + _CANCEL_GRACE_MS - now
                if left <= 0:
                    if item.is_async and item.future is not None and not item.future.done():
                        expired.append(item)
                else:
                    nearest = min(nearest, left / 1000.0)
        for item in expired:
            ctx = item.ctx
            assert ctx is not None
            log.warning(
                "cancelling async handler of step %s (task %s): past its deadline (timeout %d ms)",
                ctx.step_name,
                ctx.task_uuid,
                ctx.timeout_ms,
            )
            assert item.future is not None
            item.future.cancel()
        return max(nearest, 0.001)

    def _complete_loop(self) -> None:
        while True:
            wait = self._check_deadlines()
            batch: List[Tuple[_InFlight, str]] = []
            try:
                batch.append(self._results.get(timeout=wait))
            except queue.Empty:
                if self._stop_completer.is_set():
                    break
                continue
            self._drain_results(batch)
            # Handlers of the same poll usually finish together: wait a moment for
            # the ones still running, so their results share one write.
            linger_until = time.monotonic() + COMPLETION_LINGER_S
            while self._unsettled > 0:
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._results.get(timeout=remaining))
                except queue.Empty:
                    break
                self._drain_results(batch)
            self._send(batch)

    def _drain_results(self, batch: List[Tuple[_InFlight, str]]) -> None:
        while True:
            try:
                batch.append(self._results.get_nowait())
            except queue.Empty:
                return

    def _send(self, batch: List[Tuple[_InFlight, str]]) -> None:
        payload = "[" + ",".join(text for _, text in batch) + "]"
        delay = 0.1
        for attempt in range(1, 5):
            try:
                report = self.bridge.complete_step_events_json(payload)
            except (WorkerClosed, ForkedProcess) as e:
                log.info("%d result(s) not sent, the bridge is closed (%s); their steps were released", len(batch), e)
                break
            except Exception as e:  # noqa: BLE001
                if attempt == 4:
                    log.error(
                        "sending %d result(s) failed (%s); their steps return to the queue when their leases expire",
                        len(batch),
                        e,
                    )
                    break
                log.warning("sending %d result(s) failed (%s); retrying", len(batch), e)
                time.sleep(delay)
                delay *= 3
                continue
            for inv in report.get("invalid") or []:
                log.warning(
                    "result of event %s recorded as invalid_result: %s", inv.get("event_id"), inv.get("message")
                )
            for rej in report.get("rejected") or []:
                # A result that came after the step's deadline, or after a drain
                # released it: the core had already decided.
                log.info("result of event %s not recorded: %s", rej.get("event_id"), rej.get("reason"))
            break
        with self._cond:
            for item, _ in batch:
                item.sent = True
                self._maybe_release(item)


async def _await(value: Any) -> Any:
    return await value
