"""The installed package: where it comes from, what it exports, its typing files."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

import tasker
from tasker import _native


@pytest.mark.smoke
def test_tasker_is_imported_from_site_packages() -> None:
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    here = Path(tasker.__file__).resolve()
    assert any(p in here.parents for p in site), f"{here} is not inside {site}"
    assert "site-packages" in here.parts


@pytest.mark.smoke
def test_native_module_is_abi3_and_typed() -> None:
    pkg = Path(tasker.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_native.pyi").exists()
    assert Path(_native.__file__).name.endswith(".abi3.so")


def test_exception_hierarchy() -> None:
    codes = {
        "invalid_config": tasker.InvalidConfig,
        "invalid_input": tasker.InvalidInput,
        "worker_closed": tasker.WorkerClosed,
        "unknown_event": tasker.UnknownEvent,
        "task_not_found": tasker.TaskNotFound,
        "template_not_found": tasker.TemplateNotFound,
        "wait_timed_out": tasker.WaitTimedOut,
        "database": tasker.DatabaseError,
        "overloaded": tasker.Overloaded,
        "forked": tasker.ForkedProcess,
        "internal": tasker.InternalError,
    }
    assert sorted(codes) == sorted(_native.ERROR_CODES)
    for code, cls in codes.items():
        assert issubclass(cls, tasker.TaskerError)
        assert cls.code == code
        assert cls.__module__ == "tasker._native"
    assert issubclass(tasker.InvalidInput, ValueError)
    assert issubclass(tasker.WaitTimedOut, TimeoutError)
    from tasker import errors

    for name in ("TaskerError", "InvalidConfig", "PermanentError", "RetryableError"):
        assert getattr(errors, name) is getattr(tasker, name)


def test_unknown_option_is_invalid_config(tmp_path: Path) -> None:
    with pytest.raises(tasker.InvalidConfig) as e:
        tasker.Bridge(f"sqlite://{tmp_path / 'x.db'}", bogus_option=1)
    assert e.value.code == "invalid_config"
    assert "bogus_option" in str(e.value)


def test_version_matches_distribution() -> None:
    from importlib.metadata import version

    assert tasker.__version__ == version("tasker-core")


def test_no_third_party_runtime_dependencies() -> None:
    from importlib.metadata import requires

    assert not [r for r in (requires("tasker-core") or []) if "extra ==" not in r]


def test_forked_child_gets_forked_process(tmp_path: Path) -> None:
    bridge = tasker.Bridge(f"sqlite://{tmp_path / 'f.db'}")
    try:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 3
            try:
                bridge.get_task("00000000-0000-0000-0000-000000000000")
                code = 1
            except tasker.ForkedProcess as e:
                code = 0 if e.code == "forked" else 2
            except BaseException:
                code = 4
            os.write(w, bytes([code]))
            os._exit(0)
        os.close(w)
        got = os.read(r, 1)
        os.waitpid(pid, 0)
        assert got == bytes([0]), f"child reported {got!r}"
    finally:
        bridge.shutdown(0)
