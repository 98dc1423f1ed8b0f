"""``tasker.Engine`` (orchestration and a Python worker in this process) and
``tasker.Client`` (create and read tasks that other processes run)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _logging
from .bridge import Bridge
from .registry import HandlersArg
from .worker import Worker

__all__ = ["Engine", "Client", "TaskFailed"]

PathLike = Union[str, "os.PathLike[str]"]

# A `namespace:` key: the template's (top level) or a step's own, in block or flow style.
_NAMESPACE_KEY = re.compile(r"""(?:^|[{,])[ \t]*(?:-[ \t]+)?namespace:[ \t]*["']?([^"'\s#,}]+)""", re.MULTILINE)
_FINISHED = frozenset({"complete", "error", "cancelled", "resolved_manually", "blocked_by_failures"})


class TaskFailed(Exception):
    """Raised by ``Engine.run(..., check=True)`` when the task did not complete."""

    def __init__(self, task: Dict[str, Any]) -> None:
        failed = [s for s in task.get("steps", []) if s.get("error")]
        detail = "; ".join(f"{s['name']}: {(s.get('error') or {}).get('message')}" for s in failed)
        message = f"task {task.get('task_uuid')} ended in {task.get('state')}"
        super().__init__(message + (f" ({detail})" if detail else ""))
        self.task = task


def _template_namespaces(paths: Sequence[PathLike]) -> List[str]:
    """Namespaces the templates' steps run in: each template's ``namespace`` and the
    steps' own (``steps[].namespace``). A light scan of the ``namespace:`` keys; the
    core parses the files properly."""
    found: List[str] = []
    files: List[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted(f for f in path.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif path.is_file():
            files.append(path)
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError:
            continue
        for ns in _NAMESPACE_KEY.findall(text):
            if ns not in found:
                found.append(ns)
    return found


def _default_url(database_url: Optional[str], fallback: Optional[str]) -> str:
    url = database_url or os.environ.get("TASKER_DATABASE_URL") or fallback
    if not url:
        raise ValueError("pass database_url (sqlite://PATH or postgres://...) or set TASKER_DATABASE_URL")
    return url


def _request(
    namespace: str,
    name: str,
    context: Optional[Mapping[str, Any]],
    version: Optional[str],
    idempotency_key: Optional[str],
    correlation_id: Optional[str],
) -> Dict[str, Any]:
    req: Dict[str, Any] = {"namespace": namespace, "name": name, "context": dict(context or {})}
    if version is not None:
        req["version"] = version
    if idempotency_key is not None:
        req["idempotency_key"] = idempotency_key
    if correlation_id is not None:
        req["correlation_id"] = str(correlation_id)
    return req


class Client:
    """Creates and reads tasks; the steps run in workers elsewhere (other processes
    or machines sharing the database). Templates come from the database (registered
    by ``tasker orchestrator`` or an engine) or from ``templates``."""

    def __init__(
        self,
        database_url: Optional[str] = None,
        *,
        templates: Optional[Sequence[PathLike]] = None,
        log_level: Optional[str] = None,
        **options: Any,
    ) -> None:
        _logging.install(log_level)
        self.bridge = Bridge(
            _default_url(database_url, None),
            templates=[str(t) for t in templates] if templates else None,
            **options,
        )

    def create_task(
        self,
        namespace: str,
        name: str,
        context: Optional[Mapping[str, Any]] = None,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        correlation_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Creates a task; returns its view (``task_uuid``, ``state``, ``steps`` ...)."""
        try:
            return self.bridge.create_task(_request(namespace, name, context, version, idempotency_key, correlation_id))
        finally:
            _logging.drain()

    def get_task(self, task_uuid: str) -> Dict[str, Any]:
        """The task view."""
        try:
            return self.bridge.get_task(task_uuid)
        finally:
            _logging.drain()

    def wait_for_task(self, task_uuid: str, timeout_ms: int = 60_000) -> Dict[str, Any]:
        """Waits until the task is finished (``tasker.WaitTimedOut`` after ``timeout_ms``)."""
        try:
            return self.bridge.wait_for_task(task_uuid, timeout_ms)
        finally:
            _logging.drain()

    def close(self) -> None:
        """Closes the connection pool."""
        self.bridge.shutdown(0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Engine:
    """Orchestration plus a Python worker in this process, on SQLite by default
    (``sqlite://tasker.db``) or PostgreSQL.

    ``templates``: YAML files or folders (registered in the database at start).
    ``namespaces``: served by the worker; by default every namespace the templates
    declare, their steps' own included. ``with Engine(...) as engine:`` starts the worker and stops it (with a
    drain) at the end; ``engine.run(...)`` starts it when needed.
    """

    def __init__(
        self,
        database_url: Optional[str] = None,
        templates: Sequence[PathLike] = (),
        handlers: HandlersArg = None,
        concurrency: int = 8,
        *,
        namespaces: Optional[Sequence[str]] = None,
        poll_timeout_ms: int = 200,
        shutdown_grace_ms: int = 30000,
        log_level: Optional[str] = None,
        **options: Any,
    ) -> None:
        url = _default_url(database_url, "sqlite://tasker.db")
        template_paths = [str(t) for t in templates]
        self.namespaces = list(namespaces) if namespaces is not None else _template_namespaces(template_paths)
        _logging.install(log_level)
        self.bridge = Bridge(
            url,
            namespaces=self.namespaces,
            concurrency=concurrency,
            templates=template_paths,
            **options,
        )
        self.worker = Worker(
            namespaces=self.namespaces,
            handlers=handlers,
            concurrency=concurrency,
            poll_timeout_ms=poll_timeout_ms,
            shutdown_grace_ms=shutdown_grace_ms,
            bridge=self.bridge,
        )

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> "Engine":
        """Starts the worker threads (no-op when there is nothing to serve)."""
        if self.namespaces:
            self.worker.start()
        return self

    def close(self) -> Dict[str, Any]:
        """Stops the worker (drains: running handlers finish within the grace period,
        the rest is handed back) and closes the engine. Returns the drain report."""
        self.worker.stop()
        return dict(self.worker.drain_report or {})

    stop = close

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- tasks -------------------------------------------------------------------

    def create_task(
        self,
        namespace: str,
        name: str,
        context: Optional[Mapping[str, Any]] = None,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        correlation_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Creates a task; returns its view."""
        return self.bridge.create_task(_request(namespace, name, context, version, idempotency_key, correlation_id))

    def get_task(self, task_uuid: str) -> Dict[str, Any]:
        """The task view."""
        return self.bridge.get_task(task_uuid)

    def wait_for_task(self, task_uuid: str, timeout_ms: int = 60_000) -> Dict[str, Any]:
        """Waits until the task is finished (``tasker.WaitTimedOut`` after ``timeout_ms``)."""
        return self.bridge.wait_for_task(task_uuid, timeout_ms)

    def run(
        self,
        namespace: str,
        name: str,
        context: Optional[Mapping[str, Any]] = None,
        timeout: float = 60.0,
        *,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        check: bool = False,
    ) -> Dict[str, Any]:
        """Creates a task, waits until it is finished (at most ``timeout`` seconds),
        and returns the final task view. With ``check=True``, raises
        :class:`TaskFailed` unless it completed."""
        self.start()
        deadline = time.monotonic() + timeout
        task = self.create_task(namespace, name, context, version, idempotency_key)
        if task.get("state") not in _FINISHED:
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            task = self.wait_for_task(task["task_uuid"], left_ms)
        if check and task.get("state") != "complete":
            raise TaskFailed(task)
        return task
