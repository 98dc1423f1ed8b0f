"""Shared fixtures: database URLs (SQLite temp files, per-test PostgreSQL databases),
paths of the example and test templates, and the Python versions of the example
handlers in three styles (sync classes, async classes, decorated functions)."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List
from urllib.parse import urlsplit, urlunsplit

import pytest

# Forward the core's info records (the level is fixed when forwarding starts).
logging.getLogger("tasker.core").setLevel(logging.INFO)

import tasker  # noqa: E402
from tasker import _logging  # noqa: E402

_logging.install("info")

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parents[1]
EXAMPLES_DIR = Path(os.environ.get("TASKER_EXAMPLES_DIR") or REPO / "examples")
TEMPLATES_DIR = TESTS_DIR / "templates"
GOLDEN_DIR = Path(os.environ.get("TASKER_GOLDEN_DIR") or REPO / "proto-contract" / "golden")

ADMIN_URL = os.environ.get("TASKER_TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "tasker_pytest_"


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "smoke: a quick subset (pytest -m smoke)")


# -- PostgreSQL ------------------------------------------------------------------------


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    if candidates:
        return str(candidates[-1])
    raise RuntimeError(
        "psql not found: the PostgreSQL tests need it to create their databases "
        "(install postgresql-client, or run scripts/test-python)"
    )


def psql(sql: str, url: str = ADMIN_URL) -> str:
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    out = subprocess.run(
        [_psql(), "-X", "-w", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql failed on {urlsplit(url).hostname}: {out.stderr.strip()}")
    return out.stdout


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


_sweep_lock = threading.Lock()
_swept = False
_counter = 0


def _sweep_leftovers() -> None:
    """Drops test databases of processes that no longer run."""
    global _swept
    with _sweep_lock:
        if _swept:
            return
        _swept = True
    names = psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{DB_PREFIX}%'").split()
    for name in names:
        m = re.match(rf"{DB_PREFIX}(\d+)_", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_pg_database() -> str:
    global _counter
    _sweep_leftovers()
    with _sweep_lock:
        _counter += 1
        n = _counter
    name = f"{DB_PREFIX}{os.getpid()}_{n}_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'tasker.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: Any, tmp_path: Path) -> Iterator[str]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'tasker.db'}"
    else:
        name = create_pg_database()
        try:
            yield _with_db(ADMIN_URL, name)
        finally:
            drop_pg_database(name)


# -- The example handlers, in Python ---------------------------------------------------------


def _single_input(context: tasker.StepContext) -> int:
    deps = context.dependency_results
    if not deps:
        n = context.input("n")
        if not isinstance(n, int):
            raise tasker.PermanentError("context needs an integer `n`")
        return n
    if len(deps) != 1:
        raise tasker.PermanentError(f"expected at most one dependency, got {len(deps)}")
    (result,) = deps.values()
    return int(result["value"])


def _values(context: tasker.StepContext) -> List[int]:
    return [int(r["value"]) for r in context.dependency_results.values()]


def _product(values: List[int]) -> int:
    p = 1
    for v in values:
        p *= v
    return p


class Square(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        n = _single_input(context)
        return self.success({"value": n * n})


class MultiplySquare(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        p = _product(_values(context))
        return self.success({"value": p * p})


class Sum(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"value": sum(_values(context))})


class FlakySquare(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        if context.attempt < 3:
            return self.failure(f"simulated failure on attempt {context.attempt}", "flaky")
        n = _single_input(context)
        return self.success({"value": n * n})


class AsyncSquare(tasker.StepHandler):
    async def call(self, context: tasker.StepContext) -> tasker.StepResult:
        import asyncio

        await asyncio.sleep(0)
        n = _single_input(context)
        return self.success({"value": n * n})


class AsyncMultiplySquare(tasker.StepHandler):
    async def call(self, context: tasker.StepContext) -> tasker.StepResult:
        p = _product(_values(context))
        return self.success({"value": p * p})


class AsyncSum(tasker.StepHandler):
    async def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"value": sum(_values(context))})


class AsyncFlakySquare(tasker.StepHandler):
    async def call(self, context: tasker.StepContext) -> tasker.StepResult:
        if context.attempt < 3:
            raise tasker.RetryableError(f"simulated failure on attempt {context.attempt}")
        n = _single_input(context)
        return self.success({"value": n * n})


@tasker.handler("square")
def square_fn(context: tasker.StepContext) -> Dict[str, int]:
    n = _single_input(context)
    return {"value": n * n}


@tasker.handler("multiply_square")
def multiply_square_fn(context: tasker.StepContext) -> Dict[str, int]:
    p = _product(_values(context))
    return {"value": p * p}


@tasker.handler("sum")
def sum_fn(context: tasker.StepContext) -> Dict[str, int]:
    return {"value": sum(_values(context))}


@tasker.handler("flaky_square")
def flaky_square_fn(context: tasker.StepContext) -> Dict[str, int]:
    if context.attempt < 3:
        raise tasker.RetryableError(f"simulated failure on attempt {context.attempt}")
    n = _single_input(context)
    return {"value": n * n}


EXAMPLE_HANDLERS: Dict[str, Any] = {
    "sync": {"square": Square, "multiply_square": MultiplySquare, "sum": Sum, "flaky_square": FlakySquare},
    "async": {
        "square": AsyncSquare,
        "multiply_square": AsyncMultiplySquare,
        "sum": AsyncSum,
        "flaky_square": AsyncFlakySquare,
    },
    "decorator": [square_fn, multiply_square_fn, sum_fn, flaky_square_fn],
}

# (template name, context, step to check, expected value)
EXAMPLES = [
    ("linear", {"n": 6}, "step_4", 2821109907456),
    ("diamond", {"n": 3}, "end", 43046721),
    ("tree", {"n": 2}, "converge", 1024),
    ("mixed_dag", {"n": 2}, "g", 82944),
    ("retry", {"n": 4}, "finish", 256),
]

# The decision and batch examples, run by test_dynamic.py.
DYNAMIC_EXAMPLES = ["conditional_approval", "csv_batch"]


def step(task: Dict[str, Any], name: str) -> Dict[str, Any]:
    for s in task["steps"]:
        if s["name"] == name:
            return s
    raise KeyError(f"no step {name!r} in {[s['name'] for s in task['steps']]}")
