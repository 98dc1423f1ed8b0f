"""What a handler returns (:class:`StepResult`) and how it becomes a ``step_result``
message (``proto-contract``): one JSON document per result, checked here so that
one bad result can never spoil the batch it travels in."""

from __future__ import annotations

import json
import math
import traceback
from typing import Any, Dict, Mapping, Optional

__all__ = [
    "StepError",
    "StepResult",
    "success",
    "failure",
    "INVALID_RESULT",
    "encode_result",
    "invalid_result_json",
    "failure_from_exception",
]

#: Error type recorded for a result that cannot be serialised or breaks the contract.
INVALID_RESULT = "invalid_result"


def seconds_to_ms(seconds: float) -> int:
    """Seconds (float) to whole milliseconds, rounded up so a hint is never shortened."""
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"retry_after must be a number of seconds, got {seconds!r}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"retry_after must be a finite number of seconds >= 0, got {seconds!r}")
    return int(math.ceil(seconds * 1000.0 - 1e-9))


class StepError:
    """Why an attempt failed (the ``error`` member of a step result)."""

    __slots__ = ("message", "error_type", "retryable", "retry_after_ms", "code", "backtrace")

    def __init__(
        self,
        message: str,
        error_type: str = "handler_error",
        retryable: bool = True,
        retry_after_ms: Optional[int] = None,
        code: Optional[str] = None,
        backtrace: Optional[str] = None,
    ) -> None:
        self.message = message
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.code = code
        self.backtrace = backtrace

    @property
    def retry_after(self) -> Optional[float]:
        """The retry hint in seconds, or None."""
        return None if self.retry_after_ms is None else self.retry_after_ms / 1000.0

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {
            "message": self.message,
            "error_type": self.error_type,
            "retryable": self.retryable,
        }
        if self.retry_after_ms is not None:
            d["retry_after_ms"] = self.retry_after_ms
        if self.code is not None:
            d["code"] = self.code
        if self.backtrace is not None:
            d["backtrace"] = self.backtrace
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StepError":
        """The inverse of :meth:`to_dict`."""
        return cls(
            d["message"],
            d.get("error_type", "handler_error"),
            d.get("retryable", True),
            d.get("retry_after_ms"),
            d.get("code"),
            d.get("backtrace"),
        )

    def __repr__(self) -> str:
        return (
            f"StepError(message={self.message!r}, error_type={self.error_type!r}, "
            f"retryable={self.retryable!r}, retry_after_ms={self.retry_after_ms!r}, code={self.code!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StepError) and self.to_dict() == other.to_dict()


class StepResult:
    """One attempt's outcome. Build it with :func:`success` / :func:`failure` (or the
    handler helpers ``self.success`` / ``self.failure``)."""

    __slots__ = ("success", "result", "error", "metadata")

    def __init__(
        self,
        success: bool,
        result: Any = None,
        error: Optional[StepError] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.success = success
        self.result = result
        self.error = error
        self.metadata: Dict[str, Any] = dict(metadata or {})

    @property
    def is_success(self) -> bool:
        return bool(self.success)

    def to_dict(self) -> Dict[str, Any]:
        """The result's members of a ``step_result`` message (without ``event_id``)."""
        d: Dict[str, Any] = {"success": self.success, "result": self.result}
        if self.error is not None:
            d["error"] = self.error.to_dict()
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StepResult":
        """A result from the members of a ``step_result`` message (``event_id`` and
        ``execution_time_ms`` are ignored)."""
        error = d.get("error")
        return cls(
            d["success"],
            d.get("result"),
            StepError.from_dict(error) if isinstance(error, Mapping) else None,
            d.get("metadata"),
        )

    def __repr__(self) -> str:
        if self.success:
            return f"StepResult.success({self.result!r})"
        return f"StepResult.failure({self.error!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StepResult) and self.to_dict() == other.to_dict()


def success(result: Any = None, metadata: Optional[Mapping[str, Any]] = None) -> StepResult:
    """A successful attempt carrying ``result`` (children see it as a dependency result)."""
    return StepResult(True, result, None, metadata)


def failure(
    message: str,
    error_type: str = "handler_error",
    retryable: bool = True,
    retry_after: Optional[float] = None,
    code: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> StepResult:
    """A failed attempt. Retryable unless ``retryable=False``; ``retry_after`` (seconds)
    asks for at least that long before the next attempt and only applies to retryable
    failures (it is dropped from a permanent one, as in the Rust core)."""
    retry_after_ms = None
    if retry_after is not None and retryable:
        retry_after_ms = seconds_to_ms(retry_after)
    return StepResult(
        False,
        None,
        StepError(str(message), str(error_type), bool(retryable), retry_after_ms, None if code is None else str(code)),
        metadata,
    )


def failure_from_exception(exc: BaseException) -> StepResult:
    """The failure-table row for an exception a handler raised.

    PermanentError / RetryableError (and subclasses) keep their retryability and
    retry hint; anything else is retryable. ``error_type`` is the class name; the
    formatted traceback is recorded as ``backtrace``.
    """
    from .errors import StepFailure  # local: errors imports the native module

    kind = type(exc).__name__
    try:
        tb: Optional[str] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # noqa: BLE001 - a broken exception still fails its step
        tb = None
    try:
        message = str(exc) or kind
    except Exception:  # noqa: BLE001
        message = f"{kind} (its message could not be read)"
    if isinstance(exc, StepFailure):
        retry_after_ms = None
        retry_after = getattr(exc, "retry_after", None)
        if exc.retryable and retry_after is not None:
            try:
                retry_after_ms = seconds_to_ms(retry_after)
            except (TypeError, ValueError):
                retry_after_ms = None  # an unusable hint: the step's own backoff applies
        metadata = exc.metadata if isinstance(exc.metadata, dict) else {}
        return StepResult(
            False,
            None,
            StepError(
                message,
                exc.error_type,
                bool(exc.retryable),
                retry_after_ms,
                None if exc.code is None else str(exc.code),
                tb,
            ),
            metadata,
        )
    return StepResult(False, None, StepError(message, kind, True, None, None, tb))


def invalid_result_json(event_id: str, problem: str, execution_time_ms: Optional[int] = None) -> str:
    """An ``invalid_result`` failure of ``event_id`` as a step_result JSON text."""
    msg: Dict[str, Any] = {
        "event_id": event_id,
        "success": False,
        "result": None,
        "error": {"message": problem, "error_type": INVALID_RESULT, "retryable": False},
    }
    if execution_time_ms is not None:
        msg["execution_time_ms"] = execution_time_ms
    return json.dumps(msg)


def encode_result(event_id: str, outcome: Any, execution_time_ms: Optional[int] = None) -> str:
    """One ``step_result`` message as JSON text.

    ``outcome`` should be a :class:`StepResult`. Anything else, or a result that
    cannot be serialised as JSON (objects, NaN, non-string keys ...), becomes a
    permanent ``invalid_result`` failure naming the problem: the step is never lost
    and the batch it travels in is never spoiled.
    """
    if not isinstance(outcome, StepResult):
        return invalid_result_json(
            event_id,
            f"handler returned {type(outcome).__name__}, expected a StepResult "
            "(return self.success(...) or self.failure(...))",
            execution_time_ms,
        )
    if not isinstance(outcome.success, bool):
        return invalid_result_json(event_id, "`success` must be a bool", execution_time_ms)
    if outcome.success and outcome.error is not None:
        return invalid_result_json(event_id, "a success must not carry an error", execution_time_ms)
    if not outcome.success and outcome.error is None:
        return invalid_result_json(event_id, "a failure must carry an error", execution_time_ms)
    msg: Dict[str, Any] = {"event_id": event_id}
    msg.update(outcome.to_dict())
    if execution_time_ms is not None:
        msg["execution_time_ms"] = max(0, int(execution_time_ms))
    try:
        return json.dumps(msg, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError, OverflowError) as e:
        which = "result" if outcome.success else "error or metadata"
        return invalid_result_json(event_id, f"the {which} cannot be serialised as JSON: {e}", execution_time_ms)
