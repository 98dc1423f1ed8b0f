"""Handlers the tests reach by import path (``support_handlers.ImportedHandler``),
not by registration."""

from __future__ import annotations

from typing import Any, Dict

import tasker

INSTANCES = []


class ImportedHandler(tasker.StepHandler):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        INSTANCES.append(self)

    def call(self, context: tasker.StepContext) -> tasker.StepResult:
        return self.success({"factor": self.config["factor"], "same_config": self.config == context.config})


def imported_function(context: tasker.StepContext) -> Dict[str, Any]:
    return {"imported": True, "step": context.step_name}
