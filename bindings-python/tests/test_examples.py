"""Every example workflow of examples/*.yaml, run by Python handlers (sync
classes, async classes, decorated functions) on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

import pytest

import tasker

from conftest import (
    ADMIN_URL,
    DYNAMIC_EXAMPLES,
    EXAMPLE_HANDLERS,
    EXAMPLES,
    EXAMPLES_DIR,
    _with_db,
    create_pg_database,
    drop_pg_database,
    step,
)


@pytest.fixture(
    scope="module",
    params=[(b, s) for b in ("sqlite", "postgres") for s in ("sync", "async", "decorator")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def engine(request: Any, tmp_path_factory: Any) -> Iterator[Tuple[tasker.Engine, str]]:
    backend, style = request.param
    db_name = None
    if backend == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('examples') / 'tasker.db'}"
    else:
        db_name = create_pg_database()
        url = _with_db(ADMIN_URL, db_name)
    eng = tasker.Engine(url, templates=[EXAMPLES_DIR], handlers=EXAMPLE_HANDLERS[style], concurrency=4)
    try:
        with eng:
            yield eng, style
    finally:
        if db_name:
            drop_pg_database(db_name)


def test_every_example_template_is_covered() -> None:
    on_disk = sorted(p.stem for p in EXAMPLES_DIR.glob("*.yaml"))
    assert on_disk == sorted([e[0] for e in EXAMPLES] + DYNAMIC_EXAMPLES), "add the new example to EXAMPLES"


@pytest.mark.parametrize("name,context,last,expected", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_runs_with_python_handlers(
    engine: Tuple[tasker.Engine, str], name: str, context: Dict[str, Any], last: str, expected: int
) -> None:
    eng, _style = engine
    task = eng.run("examples", name, context, timeout=60)
    assert task["state"] == "complete", task
    assert step(task, last)["result"] == {"value": expected}
    for s in task["steps"]:
        assert s["state"] == "complete", s
    if name == "retry":
        fetch = step(task, "fetch")
        assert fetch["attempts"] == 3
        assert fetch["result"] == {"value": 16}
    else:
        assert all(s["attempts"] == 1 for s in task["steps"])


@pytest.mark.smoke
def test_linear_on_sqlite_smoke(sqlite_url: str) -> None:
    with tasker.Engine(sqlite_url, templates=[EXAMPLES_DIR], handlers=EXAMPLE_HANDLERS["decorator"]) as eng:
        task = eng.run("examples", "linear", {"n": 6}, timeout=60)
    assert task["state"] == "complete"
    assert step(task, "step_4")["result"] == {"value": 2821109907456}


@pytest.mark.smoke
def test_async_handlers_smoke(sqlite_url: str) -> None:
    with tasker.Engine(sqlite_url, templates=[EXAMPLES_DIR], handlers=EXAMPLE_HANDLERS["async"]) as eng:
        task = eng.run("examples", "diamond", {"n": 3}, timeout=60)
    assert task["state"] == "complete"
    assert step(task, "end")["result"] == {"value": 43046721}
