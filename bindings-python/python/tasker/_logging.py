"""Forwards the core's tracing output to Python's ``logging`` (logger ``tasker.core``)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Optional

from . import _native

CORE_LOGGER = logging.getLogger("tasker.core")

_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_install_lock = threading.Lock()
_installed = False
_drain_lock = threading.Lock()


def _level_name(level: int) -> str:
    if level <= 5:
        return "trace"
    if level <= logging.DEBUG:
        return "debug"
    if level <= logging.INFO:
        return "info"
    if level <= logging.WARNING:
        return "warn"
    return "error"


def install(level: Optional[str] = None) -> None:
    """Starts collecting the core's log records (once per process). ``level``: trace,
    debug, info, warn or error; by default the effective level of ``tasker.core``."""
    global _installed
    with _install_lock:
        if _installed:
            return
        name = level.lower() if isinstance(level, str) else _level_name(CORE_LOGGER.getEffectiveLevel())
        _native.install_log_forwarding(name)
        _installed = True


def drain(max_records: int = 1000) -> int:
    """Hands the collected records to ``logging``; returns how many there were."""
    if not _installed:
        return 0
    with _drain_lock:
        records = json.loads(_native.drain_log_records(max_records))
    for rec in records:
        level = _LEVELS.get(str(rec.get("level", "info")).lower(), logging.INFO)
        if not CORE_LOGGER.isEnabledFor(level):
            continue
        message = str(rec.get("message", ""))
        fields = rec.get("fields") or {}
        if fields:
            message += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        target = str(rec.get("target", "tasker_core"))
        record = CORE_LOGGER.makeRecord(
            CORE_LOGGER.name,
            level,
            target,
            0,
            message,
            (),
            None,
            extra={"target": target, "fields": fields},
        )
        ts = rec.get("timestamp_ms")
        if isinstance(ts, (int, float)):
            record.created = ts / 1000.0
            record.msecs = ts % 1000
        CORE_LOGGER.handle(record)
    return len(records)
