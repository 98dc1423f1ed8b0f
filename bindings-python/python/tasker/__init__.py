"""Tasker for Python: write step handlers in Python, run them on the Tasker core.

```python
import tasker

@tasker.handler("square")
def square(context):
    n = context.dependency("step_1")["value"] if context.dependency_results else context.input("n")
    return {"value": n * n}

with tasker.Engine("sqlite://tasker.db", templates=["examples"], handlers=[square]) as engine:
    task = engine.run("examples", "linear", {"n": 6})
```

See ``README.md`` of the package for the full API.
"""

from __future__ import annotations

from . import _native
from .bridge import Bridge
from .context import StepContext
from .engine import Client, Engine, TaskFailed
from .errors import (
    DatabaseError,
    ForkedProcess,
    InternalError,
    InvalidConfig,
    InvalidInput,
    Overloaded,
    PermanentError,
    RetryableError,
    StepFailure,
    TaskerError,
    TaskNotFound,
    TemplateNotFound,
    UnknownEvent,
    WaitTimedOut,
    WorkerClosed,
)
from .events import EventSubscriber
from .handler import StepHandler, handler
from .mixins import Api, ApiConnectionError, ApiResponse, ApiTimeoutError, Batchable, Decision
from .registry import HandlerRegistry
from .result import StepError, StepResult, failure, success
from .worker import Worker

__version__: str = _native.__version__

__all__ = [
    "Api",
    "ApiConnectionError",
    "ApiResponse",
    "ApiTimeoutError",
    "Batchable",
    "Bridge",
    "Client",
    "DatabaseError",
    "Decision",
    "Engine",
    "EventSubscriber",
    "ForkedProcess",
    "HandlerRegistry",
    "InternalError",
    "InvalidConfig",
    "InvalidInput",
    "Overloaded",
    "PermanentError",
    "RetryableError",
    "StepContext",
    "StepError",
    "StepFailure",
    "StepHandler",
    "StepResult",
    "TaskFailed",
    "TaskNotFound",
    "TaskerError",
    "TemplateNotFound",
    "UnknownEvent",
    "WaitTimedOut",
    "Worker",
    "WorkerClosed",
    "failure",
    "handler",
    "success",
]
