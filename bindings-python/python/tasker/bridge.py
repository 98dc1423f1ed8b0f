"""``tasker.Bridge``: the native contract (``tasker_core::bridge``) one-to-one, taking
and returning Python objects. JSON crosses the boundary as text and is encoded and
decoded here with the standard library's ``json``.

Every blocking call releases the GIL while it waits, so other Python threads keep
running. Errors are :class:`tasker.TaskerError` subclasses (``.code`` names the
error code)."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union, cast

from . import _native
from .result import invalid_result_json

__all__ = ["Bridge"]


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


class Bridge:
    """Opens a bridge (a worker on the given namespaces, plus the client calls)."""

    def __init__(
        self,
        database_url: str,
        *,
        namespaces: Optional[Sequence[str]] = None,
        concurrency: Optional[int] = None,
        templates: Optional[Sequence[str]] = None,
        **options: Any,
    ) -> None:
        opts: Dict[str, Any] = {"database_url": database_url}
        if namespaces is not None:
            opts["namespaces"] = list(namespaces)
        if concurrency is not None:
            opts["concurrency"] = int(concurrency)
        if templates is not None:
            opts["templates"] = [str(t) for t in templates]
        opts.update(options)
        self.options: Dict[str, Any] = opts
        self._native = _native.Bridge(_dumps(opts))

    @classmethod
    def loopback(cls, concurrency: int = 64) -> "Bridge":
        """A bridge for benchmarks of the binding layer: endless synthetic step events
        (namespace and callable ``loopback``, at most ``concurrency`` at once) whose
        results are dropped; no database work."""
        self = cls.__new__(cls)
        self.options = {"loopback": True, "concurrency": int(concurrency)}
        self._native = _native.Bridge.open_loopback(int(concurrency))
        return self

    @property
    def native(self) -> "_native.Bridge":
        """The native object (methods take and return JSON text)."""
        return self._native

    # -- worker side ---------------------------------------------------------

    def poll_step_events(self, max_events: int = 1, timeout_ms: int = 1000) -> List[Dict[str, Any]]:
        """Waits up to ``timeout_ms`` for at least one step event; at most
        ``max_events`` (and never more than the free capacity). ``[]`` on timeout
        and while draining; :class:`tasker.WorkerClosed` after shutdown."""
        return cast(List[Dict[str, Any]], json.loads(self._native.poll_step_events(int(max_events), int(timeout_ms))))

    def complete_step_events(self, results: Iterable[Union[Mapping[str, Any], str]]) -> Dict[str, Any]:
        """Sends results (``step_result`` dicts, or pre-encoded JSON texts) in one
        batch; returns the completion report ``{accepted, invalid, rejected}``.

        A dict that cannot be serialised is sent as an ``invalid_result`` failure of
        its event instead of spoiling the batch."""
        parts: List[str] = []
        for r in results:
            if isinstance(r, str):
                parts.append(r)
                continue
            try:
                parts.append(_dumps(r))
            except (TypeError, ValueError, RecursionError, OverflowError) as e:
                event_id = r.get("event_id") if isinstance(r, Mapping) else None
                if not isinstance(event_id, str):
                    raise
                parts.append(invalid_result_json(event_id, f"the result cannot be serialised as JSON: {e}"))
        return _obj(self._native.complete_step_events("[" + ",".join(parts) + "]"))

    def complete_step_events_json(self, results_json: str) -> Dict[str, Any]:
        """As :meth:`complete_step_events`, with the JSON array already encoded."""
        return _obj(self._native.complete_step_events(results_json))

    def extend_lease(self, event_id: str) -> int:
        """Moves the event's deadline (within the configured bound); returns it (epoch ms)."""
        return int(self._native.extend_lease(str(event_id)))

    def release_step_event(self, event_id: str) -> bool:
        """Hands the step back to the queue without a result (no attempt counted)."""
        return bool(self._native.release_step_event(str(event_id)))

    def checkpoint_step(self, event_id: str, cursor: Any, data: Any = None) -> None:
        """Persists a batch worker's checkpoint and extends the lease."""
        self._native.checkpoint_step(str(event_id), _dumps(cursor), _dumps(data))

    def publish_domain_event(self, name: str, payload: Any, mode: str = "fast", event_id: Optional[str] = None) -> Any:
        """Publishes a domain event (``mode``: fast, durable or broadcast). With
        ``event_id`` (a held step event) it is delivered with that step's result: a
        durable one is stored in the result's transaction; a payload failing the
        schema the step declares raises :class:`tasker.InvalidInput`. Without, a
        durable event is stored before this returns. Releases the GIL."""
        return _loads_or_text(self._native.publish_domain_event(name, _dumps(payload), mode, event_id))

    def worker_status(self) -> Dict[str, Any]:
        """Counters and in-flight claims."""
        return _obj(self._native.worker_status())

    def shutdown(self, grace_ms: int = 30000) -> Dict[str, Any]:
        """Stops claiming, waits up to ``grace_ms`` for outstanding events' results,
        releases the rest: ``{"drained": n, "released": n}``. Idempotent."""
        return _obj(self._native.shutdown(int(grace_ms)))

    # -- client side ---------------------------------------------------------

    def create_task(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """Creates a task from a ``task_request`` (``namespace``, ``name``, ``context``,
        optional ``version``, ``idempotency_key``, ``correlation_id``)."""
        return _obj(self._native.create_task(_dumps(dict(request))))

    def get_task(self, task_uuid: str) -> Dict[str, Any]:
        """The task view (state, steps with results and errors)."""
        return _obj(self._native.get_task(str(task_uuid)))

    def wait_for_task(self, task_uuid: str, timeout_ms: int) -> Dict[str, Any]:
        """Waits until the task is finished (complete or error); :class:`tasker.WaitTimedOut`
        when ``timeout_ms`` runs out first."""
        return _obj(self._native.wait_for_task(str(task_uuid), int(timeout_ms)))


def _obj(text: str) -> Dict[str, Any]:
    return cast(Dict[str, Any], json.loads(text))


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
