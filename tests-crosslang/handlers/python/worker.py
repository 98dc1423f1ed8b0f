"""The Python conformance worker: serves the given namespaces with the handlers of
conformance_handlers.py on the installed `tasker-core` wheel. Arguments and the
READY line are those every language's worker shares (tests-crosslang/README.md)."""

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tasker  # noqa: E402
from tasker.handler import handler_name_of  # noqa: E402

import conformance_handlers as handlers  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--database-url", required=True)
    p.add_argument("--namespace", action="append", dest="namespaces", required=True)
    p.add_argument("--template", action="append", dest="templates", default=[])
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--poll-interval-ms", type=int, default=50)
    p.add_argument("--builtin-handlers", action="store_true")
    p.add_argument("--break", action="append", dest="broken", default=[])
    args = p.parse_args()

    chosen = {handler_name_of(h): h for h in handlers.HANDLERS}
    for name in args.broken:
        if name not in handlers.BROKEN:
            sys.exit(f"no broken variant of {name!r} (known: {', '.join(sorted(handlers.BROKEN))})")
        chosen[name] = handlers.BROKEN[name]

    worker = tasker.Worker(
        database_url=args.database_url,
        namespaces=args.namespaces,
        handlers=chosen,
        concurrency=args.concurrency,
        templates=args.templates,
        poll_interval_ms=args.poll_interval_ms,
        builtin_handlers=args.builtin_handlers,
        shutdown_grace_ms=5000,
    )
    ready = {
        "language": handlers.LANGUAGE,
        "worker_id": worker.bridge.worker_status()["worker_id"],
        "runtime": f"{platform.python_implementation()} {platform.python_version()}, tasker {tasker.__version__}",
    }
    print("READY " + json.dumps(ready), flush=True)
    worker.run()


if __name__ == "__main__":
    main()
