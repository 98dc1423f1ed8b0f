/**
 * The TypeScript conformance worker: serves the given namespaces with the handlers
 * of handlers.ts on the installed `tasker-core` package. Arguments and the READY
 * line are those every language's worker shares (tests-crosslang/README.md).
 */

import { parseArgs } from "node:util";
import { handlerNameOf, VERSION, Worker, type HandlerLike } from "tasker-core";
import { BROKEN, HANDLERS, LANGUAGE } from "./handlers";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "database-url": { type: "string" },
      namespace: { type: "string", multiple: true },
      template: { type: "string", multiple: true },
      concurrency: { type: "string", default: "16" },
      "poll-interval-ms": { type: "string", default: "50" },
      "builtin-handlers": { type: "boolean", default: false },
      break: { type: "string", multiple: true },
    },
  });
  if (!values["database-url"] || !values.namespace?.length) throw new Error("--database-url and --namespace are required");
  const chosen = new Map<string, HandlerLike>(HANDLERS.map((h) => [handlerNameOf(h), h]));
  for (const name of values.break ?? []) {
    const variant = BROKEN[name];
    if (!variant) throw new Error(`no broken variant of ${name} (known: ${Object.keys(BROKEN).join(", ")})`);
    chosen.set(name, variant);
  }
  const worker = new Worker({
    databaseUrl: values["database-url"],
    namespaces: values.namespace,
    handlers: [...chosen.values()],
    concurrency: Number(values.concurrency),
    templates: values.template ?? [],
    pollIntervalMs: Number(values["poll-interval-ms"]),
    builtinHandlers: values["builtin-handlers"],
    shutdownGraceMs: 5000,
  });
  await worker.start();
  const ready = {
    language: LANGUAGE,
    worker_id: worker.bridge.workerStatus().worker_id,
    runtime: `node ${process.versions.node}, tasker-core ${VERSION}`,
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
  await worker.run();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
