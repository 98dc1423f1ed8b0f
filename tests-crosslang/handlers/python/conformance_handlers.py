"""The Python conformance handlers. Each callable does exactly what its Rust, Ruby
and TypeScript twins do (the table in tests-crosslang/README.md); failures use the
idiomatic Python way (raising PermanentError, RetryableError or any exception, or
returning tasker.failure(...)) so the suite checks the binding's failure table too.
"""

import asyncio
import hashlib
import math

import tasker

LANGUAGE = "python"
BLOB_UNIT = "0123456789abcdef"


class InventoryServiceDown(Exception):
    """An application exception the handlers do not catch."""


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


@tasker.handler("slow_first_attempt")
async def slow_first_attempt(context):
    if context.attempt == 1:
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


HANDLERS = [
    square,
    multiply_square,
    sum_values,
    flaky_square,
    decline_card,
    upstream_unavailable,
    retry_after_once,
    slow_first_attempt,
    return_nan,
    raise_unexpected,
    echo_text,
    make_blob,
    digest_blobs,
    constant,
    collect,
    relay,
]


# Deliberately wrong variants, swapped in by `worker.py --break CALLABLE` to show
# that the suite catches a handler that drifts from the others.
@tasker.handler("square")
def broken_square(context):
    n = input_value(context)
    return {"value": n * n + 1}  # off by one


BROKEN = {"square": broken_square}
