"""The Python conformance handlers. Each callable does exactly what its Rust, Ruby
and TypeScript twins do (the table in tests-crosslang/README.md); failures use the
idiomatic Python way (raising PermanentError, RetryableError or any exception, or
returning tasker.failure(...)) so the suite checks the binding's failure table too.
The decision and batchable handlers are classes using the binding's Decision and
Batchable mixins.
"""

import asyncio
import hashlib
import math

import tasker

LANGUAGE = "python"
BLOB_UNIT = "0123456789abcdef"


class InventoryServiceDown(Exception):
    """An application exception the handlers do not catch."""


class SimulatedCrash(Exception):
    """What a batch worker raises to fail mid-range."""


def input_value(context):
    """The single parent's ``value``, else the context's ``n``."""
    parents = list(context.dependency_results.values())
    return parents[0]["value"] if parents else context.input("n")


@tasker.handler("square")
def square(context):
    n = input_value(context)
    return {"value": n * n}


@tasker.handler("multiply_square")
def multiply_square(context):
    product = 1
    for parent in context.dependency_results.values():
        product *= parent["value"]
    return {"value": product * product}


@tasker.handler("sum")
def sum_values(context):
    return {"value": sum(p["value"] for p in context.dependency_results.values())}


@tasker.handler("flaky_square")
def flaky_square(context):
    if context.attempt < 3:
        return tasker.failure(f"simulated failure on attempt {context.attempt}", error_type="flaky")
    n = input_value(context)
    return {"value": n * n}


@tasker.handler("decline_card")
def decline_card(context):
    raise tasker.PermanentError("card ending 4242 was declined")


@tasker.handler("upstream_unavailable")
def upstream_unavailable(context):
    return tasker.failure(
        f"inventory service unavailable on attempt {context.attempt}", error_type="upstream_unavailable"
    )


@tasker.handler("retry_after_once")
def retry_after_once(context):
    ms = context.config["retry_after_ms"]
    if context.attempt == 1:
        raise tasker.RetryableError(f"rate limited: retry after {ms} ms", retry_after=ms / 1000)
    return {"attempt": context.attempt}


@tasker.handler("always_slow")
async def always_slow(context):
    await asyncio.sleep(context.config["sleep_ms"] / 1000)
    return {"attempt": context.attempt}


@tasker.handler("return_nan")
def return_nan(context):
    return {"ratio": math.nan}


@tasker.handler("raise_unexpected")
def raise_unexpected(context):
    raise InventoryServiceDown("warehouse 7 unreachable: 倉庫 ✗")


@tasker.handler("echo_text")
def echo_text(context):
    text = context.input("text")
    return {
        "text": text,
        "code_points": len(text),
        "utf8_bytes": len(text.encode("utf-8")),
        "labels": context.input("labels"),
    }


@tasker.handler("make_blob")
def make_blob(context):
    blob = BLOB_UNIT * (context.config["kib"] * 64)
    return {"bytes": len(blob.encode("utf-8")), "blob": blob}


def digest(value):
    if not isinstance(value, str):
        return None
    data = value.encode("utf-8")
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@tasker.handler("digest_blobs")
def digest_blobs(context):
    parent = next(iter(context.dependency_results.values()), {})
    return {"parent": digest(parent.get("blob")), "context": digest(context.input("blob"))}


@tasker.handler("constant")
def constant(context):
    return context.config.get("value")


@tasker.handler("publish_events")
def publish_events(context):
    return _publish_events(context, force_mode=None)


def _publish_events(context, force_mode):
    events = context.config.get("events") or []
    for e in events:
        context.publish(e["name"], e.get("payload"), force_mode or e["mode"])
    return {"published": len(events)}


@tasker.handler("collect")
def collect(context):
    return {"received": context.dependency_results}


@tasker.handler("relay")
def relay(context):
    parents = list(context.dependency_results.values())
    visited = list(parents[0]["visited"]) if parents else []
    visited.append(context.step_name)
    return tasker.success(
        {"value": input_value(context) * 2, "visited": visited}, metadata={"language": LANGUAGE}
    )


class RouteBranches(tasker.StepHandler, tasker.Decision):
    """Creates the branches the context's ``branches`` names, or none."""

    handler_name = "route_branches"

    def call(self, context):
        names = context.input("branches") or []
        return self.create_steps(names) if names else self.no_branches()


class SplitItems(tasker.StepHandler, tasker.Batchable):
    """Batches over the context's ``items``, of its ``batch_size`` when given (else
    the engine cuts them); none when there are no items."""

    handler_name = "split_items"

    def call(self, context):
        items = context.input("items", 0)
        return self.create_batches(items, context.input("batch_size")) if items else self.no_batches()


@tasker.handler("sum_range")
def sum_range(context):
    """Adds up the item numbers of its cursor range, from the last checkpoint's
    cursor and sum on; saves {cursor: next item, data: {sum}} after every
    ``checkpoint_every`` items; on attempt 1, fails just before item
    ``fail_once_at`` of the context."""
    return _sum_range(context, resume=True)


def _sum_range(context, resume):
    start, end = context.cursor_range()
    checkpoint = context.checkpoint
    if not resume and checkpoint:
        start, checkpoint = context.config["cursor"]["start_cursor"], None
    every = context.config.get("checkpoint_every", 0)
    fail_at = context.input("fail_once_at")
    total = checkpoint["data"]["sum"] if checkpoint else 0
    processed = []
    for i in range(start, end):
        if context.attempt == 1 and i == fail_at:
            raise SimulatedCrash(f"simulated crash before item {i}")
        total += i
        processed.append(i)
        if every and (i + 1) % every == 0 and i + 1 < end:
            context.save_checkpoint(i + 1, {"sum": total})
    return {
        "batch_id": context.config["cursor"]["batch_id"],
        "resumed_from": checkpoint["cursor"] if checkpoint else None,
        "processed": processed,
        "sum": total,
    }


HANDLERS = [
    square,
    multiply_square,
    sum_values,
    flaky_square,
    decline_card,
    upstream_unavailable,
    retry_after_once,
    always_slow,
    return_nan,
    raise_unexpected,
    echo_text,
    make_blob,
    digest_blobs,
    constant,
    collect,
    publish_events,
    relay,
    RouteBranches,
    SplitItems,
    sum_range,
]


# Deliberately wrong variants, swapped in by `worker.py --break CALLABLE` to show
# that the suite catches a handler that drifts from the others.
@tasker.handler("square")
def broken_square(context):
    n = input_value(context)
    return {"value": n * n + 1}  # off by one


@tasker.handler("sum_range")
def broken_sum_range(context):
    return _sum_range(context, resume=False)  # starts its range over on a retry


@tasker.handler("publish_events")
def broken_publish_events(context):
    return _publish_events(context, force_mode="fast")  # every event fast, none stored


BROKEN = {"square": broken_square, "sum_range": broken_sum_range, "publish_events": broken_publish_events}
