"""What a handler sees: :class:`StepContext`, built from one ``step_event``."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Mapping, MutableMapping, Optional, Tuple

__all__ = ["StepContext", "StepLoggerAdapter"]

_HANDLER_LOGGER = logging.getLogger("tasker.handler")


class StepLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds ``correlation_id``, ``step_name`` and ``task_uuid`` to every record
    (as record attributes, for formatters: ``%(correlation_id)s``), merged with any
    ``extra`` the call passes."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


class StepContext:
    """One attempt of one step, as its handler sees it.

    Built from a ``step_event`` (``proto-contract``). ``context`` is the task's
    input, ``dependency_results`` the parents' results by step name, ``config`` the
    template's ``handler.initialization``.
    """

    def __init__(self, event: Mapping[str, Any], bridge: Any = None) -> None:
        handler = event["handler"]
        self.event_id: str = str(event["event_id"])
        self.task_uuid: str = str(event["task_uuid"])
        self.step_uuid: str = str(event["step_uuid"])
        self.correlation_id: str = str(event["correlation_id"])
        self.namespace: str = event["namespace"]
        self.task_name: str = event["task_name"]
        self.task_version: str = event.get("task_version", "")
        self.step_name: str = event["step_name"]
        self.template_step_name: str = event.get("template_step_name", self.step_name)
        self.step_type: str = event.get("step_type", "standard")
        self.handler_callable: str = handler["callable"]
        self.handler_method: str = handler.get("method") or "call"
        init = handler.get("initialization")
        self.config: Dict[str, Any] = init if isinstance(init, dict) else ({} if init is None else {"value": init})
        self.context: Dict[str, Any] = event.get("context") or {}
        self.dependency_results: Dict[str, Any] = dict(event.get("dependency_results") or {})
        self.attempt: int = int(event["attempt"])
        self.max_attempts: int = int(event["max_attempts"])
        self.retryable: bool = bool(event.get("retryable", True))
        self.timeout_ms: int = int(event.get("timeout_ms", 0))
        self.deadline_ms: int = int(event.get("deadline_ms", 0))
        self.checkpoint: Optional[Dict[str, Any]] = event.get("checkpoint")
        self._bridge = bridge
        self.logger = StepLoggerAdapter(
            _HANDLER_LOGGER,
            {"correlation_id": self.correlation_id, "step_name": self.step_name, "task_uuid": self.task_uuid},
        )

    # -- reading -----------------------------------------------------------

    @property
    def is_retry(self) -> bool:
        """True from the second attempt on."""
        return self.attempt > 1

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure of this attempt will not be retried for lack of attempts."""
        return self.attempt >= self.max_attempts

    @property
    def remaining_ms(self) -> int:
        """Milliseconds left before this attempt's deadline (may be negative)."""
        return self.deadline_ms - int(time.time() * 1000)

    def input(self, key: str, default: Any = None) -> Any:
        """A field of the task context, or ``default``."""
        if isinstance(self.context, dict):
            return self.context.get(key, default)
        return default

    def dependency(self, name: str) -> Any:
        """The result of parent step ``name`` (None when there is no such parent)."""
        return self.dependency_results.get(name)

    def cursor_range(self) -> Tuple[int, int]:
        """A batch worker's cursor range ``(start, end)`` (0-based, end-exclusive).

        Found in the step's configuration (``config["cursor"]``, where the engine
        puts it, or ``config`` itself, holding ``start_cursor`` / ``end_cursor``),
        else in the analyzer's result among the dependency results: the
        ``cursor_configs`` entry of its ``batch_processing_outcome`` whose
        ``batch_id`` ends this step's name (``process_batch_002`` made from
        template step ``process_batch`` is batch ``002``). When an earlier attempt
        saved a checkpoint whose cursor is an integer, ``start`` is that cursor
        (resume where it stopped), never past ``end``.
        """
        spec = self._cursor_spec()
        if spec is None:
            raise LookupError(
                f"step {self.step_name!r} has no cursor range: no config['cursor'] and no "
                "batch_processing_outcome among its dependency results names its batch"
            )
        start, end = int(spec["start_cursor"]), int(spec["end_cursor"])
        cursor = (self.checkpoint or {}).get("cursor")
        if isinstance(cursor, int) and not isinstance(cursor, bool):
            start = min(max(start, cursor), end)
        return start, end

    def _cursor_spec(self) -> Optional[Dict[str, Any]]:
        for own in (self.config.get("cursor"), self.config):
            if isinstance(own, dict) and "start_cursor" in own and "end_cursor" in own:
                return own
        prefix = self.template_step_name + "_"
        if not self.step_name.startswith(prefix):
            return None
        batch_id = self.step_name[len(prefix) :]
        for result in self.dependency_results.values():
            outcome = result.get("batch_processing_outcome") if isinstance(result, dict) else None
            if not isinstance(outcome, dict) or outcome.get("type") != "create_batches":
                continue
            for cfg in outcome.get("cursor_configs") or []:
                if isinstance(cfg, dict) and str(cfg.get("batch_id")) == batch_id:
                    return cfg
        return None

    # -- acting ------------------------------------------------------------

    def _require_bridge(self) -> Any:
        if self._bridge is None:
            raise RuntimeError("this context is not attached to a worker")
        return self._bridge

    def save_checkpoint(self, cursor: Any, data: Any = None) -> None:
        """Persists a checkpoint (and extends the lease). A retried attempt sees the
        last one as ``context.checkpoint``."""
        self._require_bridge().checkpoint_step(self.event_id, cursor, data)
        now = int(time.time() * 1000)
        self.checkpoint = {"cursor": cursor, "data": data, "saved_at_ms": now}
        # A checkpoint extends the attempt like extend_lease (at most to now +
        # timeout); the bridge does not say by how much, so this is an upper bound.
        self.deadline_ms = max(self.deadline_ms, now + self.timeout_ms)

    def extend_lease(self) -> int:
        """Moves this attempt's deadline further (within the configured bound) and
        returns the new deadline (epoch ms)."""
        deadline = int(self._require_bridge().extend_lease(self.event_id))
        self.deadline_ms = deadline
        return deadline

    def publish(self, name: str, payload: Any, mode: str = "fast") -> Any:
        """Publishes a domain event about this step (``mode``: fast, durable or
        broadcast), delivered with this step's result: a durable one is stored in the
        result's transaction, only if the result is recorded. A payload failing the
        schema the step declares for ``name`` raises :class:`tasker.InvalidInput`."""
        return self._require_bridge().publish_domain_event(name, payload, mode, self.event_id)

    def __repr__(self) -> str:
        return (
            f"StepContext(step_name={self.step_name!r}, task_uuid={self.task_uuid!r}, "
            f"attempt={self.attempt}/{self.max_attempts})"
        )
