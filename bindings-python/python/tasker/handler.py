"""The handler API: the :class:`StepHandler` base class and the ``@handler``
decorator for plain functions."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Mapping, Optional, TypeVar

from .context import StepContext
from .result import StepResult
from .result import failure as _failure
from .result import success as _success

__all__ = ["StepHandler", "handler", "FunctionHandler", "handler_name_of"]

F = TypeVar("F", bound=Callable[..., Any])


class StepHandler:
    """Base class of class-based handlers.

    Override ``call(self, context)`` (plain ``def`` or ``async def``) and return
    ``self.success(...)`` or ``self.failure(...)``; raise :class:`tasker.PermanentError`
    or :class:`tasker.RetryableError` to fail with those semantics. A template's
    ``handler.method`` may name another method with the same signature.

    ``handler_name`` (optional class attribute) is the callable name the class is
    registered under when passed in a list; without it, its import path
    (``package.module.ClassName``).

    One instance serves every step naming its callable (with the same
    ``initialization``), possibly from several threads at once: keep per-step
    state in locals, not on ``self``. ``self.config`` is the template's
    ``handler.initialization``.
    """

    handler_name: Optional[str] = None

    def __init__(self, config: Optional[Mapping[str, Any]] = None) -> None:
        self.config: Dict[str, Any] = dict(config or {})

    def call(self, context: StepContext) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement call(self, context)")

    # -- result helpers ------------------------------------------------------

    def success(self, result: Any = None, metadata: Optional[Mapping[str, Any]] = None) -> StepResult:
        """A successful attempt carrying ``result``."""
        return _success(result, metadata)

    def failure(
        self,
        message: str,
        error_type: str = "handler_error",
        retryable: bool = True,
        retry_after: Optional[float] = None,
        code: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> StepResult:
        """A failed attempt; retryable unless ``retryable=False``. ``retry_after`` is in
        seconds (recorded as ``retry_after_ms``)."""
        return _failure(message, error_type, retryable, retry_after, code, metadata)


class FunctionHandler(StepHandler):
    """Wraps a plain function ``f(context)`` (sync or async): a plain return value
    is a success with that result, a returned :class:`StepResult` is kept as is,
    raised exceptions follow the failure table."""

    def __init__(self, fn: Callable[..., Any], config: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(config)
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)

    def call(self, context: StepContext) -> Any:  # pragma: no cover - the worker calls fn directly
        return self.fn(context)

    def __repr__(self) -> str:
        return f"FunctionHandler({getattr(self.fn, '__qualname__', self.fn)!r})"


def handler(name: str) -> Callable[[F], F]:
    """Marks a function ``f(context)`` as the handler of callable ``name``::

        @tasker.handler("square")
        def square(context):
            return {"value": context.input("n") ** 2}

    The function is returned unchanged (still callable in tests); pass it to
    ``Worker(handlers=[square])``.
    """

    if not isinstance(name, str) or not name:
        raise TypeError("@tasker.handler needs the callable name, e.g. @tasker.handler('square')")

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError("@tasker.handler decorates a function")
        fn.__tasker_handler__ = name  # type: ignore[attr-defined]
        return fn

    return mark


def handler_name_of(obj: Any) -> str:
    """The callable name a handler registers under when given without a name."""
    marked = getattr(obj, "__tasker_handler__", None)
    if isinstance(marked, str):
        return marked
    if inspect.isclass(obj):
        declared = getattr(obj, "handler_name", None)
        if isinstance(declared, str) and declared:
            return declared
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not qualname:
        raise TypeError(f"cannot tell the callable name of {obj!r}; register it in a dict")
    return f"{module}.{qualname}" if module else str(qualname)
