"""Maps a step event's ``handler.callable`` to something the worker can run:
explicit registrations first, then an import path (``package.module.ClassName``)."""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .handler import FunctionHandler, StepHandler, handler_name_of
from .result import StepResult, failure

__all__ = ["HandlerRegistry", "Resolved", "HandlersArg"]

HandlersArg = Union[None, Iterable[Any], Mapping[str, Any]]


class Resolved:
    """A runnable entry point: ``fn(context)``, async or not, and whether a plain
    return value counts as a success (function handlers) or must be a StepResult
    (class handlers)."""

    __slots__ = ("fn", "is_async", "plain_returns", "instance")

    def __init__(self, fn: Callable[..., Any], is_async: bool, plain_returns: bool, instance: Any) -> None:
        self.fn = fn
        self.is_async = is_async
        self.plain_returns = plain_returns
        self.instance = instance


def _instantiate(cls: type, config: Dict[str, Any]) -> Any:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "config" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        obj = cls(config=config)
    else:
        obj = cls()
    # Whatever the constructor did, the template's initialization is the config.
    try:
        obj.config = config
    except AttributeError:
        pass
    return obj


class HandlerRegistry:
    """Handlers by callable name. Thread-safe; instances are cached per callable
    and initialization (one instance per callable in the usual case)."""

    def __init__(self, handlers: HandlersArg = None) -> None:
        self._explicit: Dict[str, Any] = {}
        self._instances: Dict[Tuple[str, str], Any] = {}
        self._imported: Dict[str, Any] = {}
        self._lock = threading.Lock()
        if handlers is None:
            return
        if isinstance(handlers, Mapping):
            for name, h in handlers.items():
                self.register(name, h)
        else:
            for h in handlers:
                self.register(handler_name_of(h), h)

    def register(self, name: str, handler: Any) -> None:
        """Registers a handler class, a handler instance or a function ``f(context)``
        under ``name`` (replacing a previous one)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a callable name must be a non-empty string, got {name!r}")
        if not (inspect.isclass(handler) or callable(handler) or isinstance(handler, StepHandler)):
            raise TypeError(f"handler for {name!r} must be a class, an instance or a function, got {handler!r}")
        with self._lock:
            self._explicit[name] = handler
            self._instances = {k: v for k, v in self._instances.items() if k[0] != name}

    def names(self) -> List[str]:
        """Explicitly registered callables, sorted."""
        return sorted(self._explicit)

    def __contains__(self, name: object) -> bool:
        return name in self._explicit

    def _lookup(self, callable_name: str) -> Tuple[Optional[Any], Optional[str]]:
        if callable_name in self._explicit:
            return self._explicit[callable_name], None
        if callable_name in self._imported:
            return self._imported[callable_name], None
        if "." not in callable_name:
            return None, None
        parts = callable_name.split(".")
        last_error: Optional[str] = None
        # The longest importable module prefix, then attributes (nested classes).
        for cut in range(len(parts) - 1, 0, -1):
            module_name = ".".join(parts[:cut])
            try:
                obj: Any = importlib.import_module(module_name)
            except ModuleNotFoundError as e:
                if e.name is not None and module_name.startswith(e.name):
                    last_error = f"no module {e.name!r}"
                    continue
                return None, f"importing {module_name!r} failed: {e!r}"
            except Exception as e:  # noqa: BLE001 - report the import error, do not crash the worker
                return None, f"importing {module_name!r} failed: {e!r}"
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                return None, f"module {module_name!r} has no attribute {'.'.join(parts[cut:])!r}"
            if not (inspect.isclass(obj) or callable(obj)):
                return None, f"{callable_name!r} is neither a class nor a function"
            with self._lock:
                self._imported[callable_name] = obj
            return obj, None
        return None, last_error

    def _not_found(self, callable_name: str, why: Optional[str]) -> StepResult:
        known = ", ".join(self.names()) or "(none)"
        message = f"no handler for callable {callable_name!r}; registered: {known}"
        if why:
            message += f" (import path: {why})"
        return failure(message, "handler_not_found", retryable=False)

    def resolve(self, callable_name: str, method: str, config: Dict[str, Any]) -> Union[Resolved, StepResult]:
        """The entry point for a step, or the failure to record (``handler_not_found``,
        ``unknown_method``)."""
        target, why = self._lookup(callable_name)
        if target is None:
            return self._not_found(callable_name, why)
        method = method or "call"

        if inspect.isclass(target):
            key = (callable_name, json.dumps(config, sort_keys=True, default=repr))
            with self._lock:
                instance = self._instances.get(key)
            if instance is None:
                instance = _instantiate(target, config)
                with self._lock:
                    instance = self._instances.setdefault(key, instance)
            return self._method_of(instance, callable_name, method, plain_returns=False)
        if isinstance(target, StepHandler) or (hasattr(target, "call") and not inspect.isfunction(target)):
            return self._method_of(target, callable_name, method, plain_returns=False)
        # A plain function (decorated or not).
        if method != "call":
            return failure(
                f"handler {callable_name!r} is a function and has no method {method!r}",
                "unknown_method",
                retryable=False,
            )
        fn = target.fn if isinstance(target, FunctionHandler) else target
        return Resolved(fn, inspect.iscoroutinefunction(fn), True, None)

    @staticmethod
    def _method_of(instance: Any, callable_name: str, method: str, plain_returns: bool) -> Union[Resolved, StepResult]:
        if isinstance(instance, FunctionHandler):
            if method != "call":
                return failure(
                    f"handler {callable_name!r} is a function and has no method {method!r}",
                    "unknown_method",
                    retryable=False,
                )
            return Resolved(instance.fn, instance.is_async, True, instance)
        entry = None
        if not method.startswith("_") and not _is_helper(instance, method):
            entry = getattr(instance, method, None)
        if entry is None or not callable(entry):
            return failure(
                f"handler {callable_name!r} ({type(instance).__name__}) has no method {method!r}",
                "unknown_method",
                retryable=False,
            )
        return Resolved(entry, inspect.iscoroutinefunction(entry), plain_returns, instance)


def _is_helper(instance: Any, method: str) -> bool:
    """True when ``method`` is one of the helpers the base class and the mixins
    provide (``success``, ``get``, ``create_steps`` ...) and the handler did not
    define it itself: those are never entry points."""
    from . import mixins

    attr = getattr(type(instance), method, None)
    for base in (StepHandler, mixins.Api, mixins.Decision, mixins.Batchable):
        if method != "call" and base.__dict__.get(method) is not None and base.__dict__.get(method) is attr:
            return True
    return False
