"""Exceptions.

Two families live here:

* Errors raised by the native bridge (:class:`TaskerError` and one subclass per
  error code). They are created in Rust (``tasker._native``) and re-exported here.
  Every one has a ``code`` attribute naming its error code.
* Errors a handler raises to say how its step failed: :class:`PermanentError`
  (never retried) and :class:`RetryableError` (retried, optionally not before
  ``retry_after`` seconds). Subclass them freely: the recorded ``error_type`` is
  the class name of the exception raised.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._native import (
    DatabaseError,
    ForkedProcess,
    InternalError,
    InvalidConfig,
    InvalidInput,
    Overloaded,
    TaskerError,
    TaskNotFound,
    TemplateNotFound,
    UnknownEvent,
    WaitTimedOut,
    WorkerClosed,
)

# Every core error says whether calling again later can succeed (`retryable`)
# and, for `Overloaded`, how long to wait first (`retry_after`, in seconds).
TaskerError.retryable = False
TaskerError.retry_after = None
Overloaded.retryable = True

__all__ = [
    "TaskerError",
    "InvalidConfig",
    "InvalidInput",
    "WorkerClosed",
    "UnknownEvent",
    "TaskNotFound",
    "TemplateNotFound",
    "WaitTimedOut",
    "DatabaseError",
    "Overloaded",
    "ForkedProcess",
    "InternalError",
    "StepFailure",
    "PermanentError",
    "RetryableError",
]


class StepFailure(Exception):
    """Base of the exceptions a handler raises to fail its step on purpose.

    Raise one of the two subclasses; the step's ``error_type`` is the class name
    of the exception (so ``class CardDeclined(PermanentError)`` records
    ``CardDeclined``).
    """

    retryable: bool = True

    def __init__(
        self,
        message: str = "",
        *,
        code: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.metadata: Dict[str, Any] = dict(metadata or {})

    @property
    def error_type(self) -> str:
        return type(self).__name__


class PermanentError(StepFailure):
    """The step failed and retrying cannot help: it is not retried."""

    retryable = False


class RetryableError(StepFailure):
    """The step failed but may succeed later: it is retried (up to the step's
    ``max_attempts``), not before ``retry_after`` seconds when given."""

    retryable = True

    def __init__(
        self,
        message: str = "",
        retry_after: Optional[float] = None,
        *,
        code: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message, code=code, metadata=metadata)
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        self.retry_after = retry_after
