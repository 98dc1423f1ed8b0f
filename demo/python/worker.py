"""Runs the demo's Python steps (namespace fulfilment.python) on the database named
by TASKER_DATABASE_URL until SIGTERM."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tasker  # noqa: E402

from handlers import HANDLERS  # noqa: E402

tasker.Worker(namespaces=["fulfilment.python"], handlers=HANDLERS, poll_interval_ms=50).run()
