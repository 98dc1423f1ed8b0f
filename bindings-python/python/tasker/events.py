"""``tasker.EventSubscriber``: reads durable domain events as a named consumer, at
least once (``tasker_core::events::subscriber`` one-to-one).

``poll`` returns the events after the last one this subscriber handed out (its first
poll starts after the consumer's acknowledged sequence); ``ack(sequence)`` records
that the consumer has handled everything up to ``sequence``. A new subscriber with
the same consumer name (a restart, another process) gets again whatever was not
acknowledged; consumers with different names are independent. ``poll`` waits in
Rust with the GIL released, like ``Bridge.poll_step_events``.

```python
subscriber = tasker.EventSubscriber(engine.bridge, "billing", name_pattern="order.*")
for event in subscriber:            # waits for events; never ends by itself
    handle(event["name"], event["payload"])
    subscriber.ack(event["sequence"])
```
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, cast

from . import _native
from .bridge import Bridge

__all__ = ["EventSubscriber"]


class EventSubscriber:
    """A named consumer of durable domain events on a bridge's database."""

    def __init__(self, bridge: Bridge, consumer: str, name_pattern: Optional[str] = None) -> None:
        self._native = _native.EventSubscriber(bridge.native, str(consumer), name_pattern)

    @property
    def consumer(self) -> str:
        """The consumer's name."""
        return cast(str, self._native.consumer)

    def poll(self, max_events: int = 100, timeout_ms: int = 1000) -> List[Dict[str, Any]]:
        """Waits up to ``timeout_ms`` for events; at most ``max_events`` stored events
        (``{sequence, event_id, name, payload, mode, task_uuid, ...}``), oldest first;
        ``[]`` when the time runs out."""
        return cast(List[Dict[str, Any]], json.loads(self._native.poll(int(max_events), int(timeout_ms))))

    def ack(self, sequence: int) -> int:
        """Records that every event up to ``sequence`` was handled; returns the
        consumer's stored offset (it never moves back)."""
        return int(self._native.ack(int(sequence)))

    def rewind(self) -> None:
        """Starts again after the acknowledged sequence: the next poll redelivers
        what was handed out and not acknowledged."""
        self._native.rewind()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        """Yields events one by one as they arrive, waiting between them (one second
        per poll); stops only when the loop breaks. Acknowledge as you go."""
        while True:
            for event in self.poll(100, 1000):
                yield event

    def __repr__(self) -> str:
        return f"<tasker.EventSubscriber consumer={self.consumer!r}>"
