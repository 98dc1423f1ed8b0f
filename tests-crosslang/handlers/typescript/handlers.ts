/**
 * The TypeScript conformance handlers. Each callable does exactly what its Rust,
 * Python and Ruby twins do (the table in tests-crosslang/README.md); failures use
 * the idiomatic TypeScript way (throwing PermanentError, RetryableError or any
 * Error, or returning failure(...)) so the suite checks the package's failure
 * table too.
 */

import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Batchable,
  Decision,
  defineHandler,
  failure,
  PermanentError,
  RetryableError,
  StepHandler,
  success,
  type DomainEventMode,
  type FunctionHandler,
  type HandlerLike,
  type StepContext,
  type StepResult,
} from "tasker-core";

export const LANGUAGE = "typescript";
const BLOB_UNIT = "0123456789abcdef";

/** An application error the handlers do not catch. */
class InventoryServiceDown extends Error {}

/** What a batch worker throws to fail mid-range. */
class SimulatedCrash extends Error {}

/** Creates the branches the context's `branches` names, or none. */
class RouteBranches extends Decision(StepHandler) {
  static override handlerName = "route_branches";

  call(context: StepContext): StepResult {
    const names = context.input<string[]>("branches", []);
    return names.length > 0 ? this.createSteps(names) : this.noBranches();
  }
}

/**
 * Batches over the context's `items`, of its `batch_size` when given (else the
 * engine cuts them); none when there are no items.
 */
class SplitItems extends Batchable(StepHandler) {
  static override handlerName = "split_items";

  call(context: StepContext): StepResult {
    const items = context.input<number>("items", 0);
    return items > 0 ? this.createBatches(items, context.input<number | undefined>("batch_size")) : this.noBatches();
  }
}

type SumCheckpoint = { sum: number };
type Cursor = { batch_id: string; start_cursor: number };

/**
 * `publish_events`: publishes each {name, mode, payload} of the `events` setting
 * with the step's result (every one as `forceMode` in the broken variant).
 */
async function publishEvents(context: StepContext, forceMode?: DomainEventMode): Promise<unknown> {
  const events = (context.config.events ?? []) as { name: string; mode: DomainEventMode; payload: unknown }[];
  for (const e of events) {
    await context.publish(e.name, e.payload ?? null, forceMode ?? e.mode);
  }
  return { published: events.length };
}

/**
 * `sum_range`: adds up the item numbers of its cursor range, from the last
 * checkpoint's cursor and sum on (unless `resume` is false); saves {cursor: next
 * item, data: {sum}} after every `checkpoint_every` items; on attempt 1, fails
 * just before item `fail_once_at` of the context.
 */
async function sumRange(context: StepContext, resume: boolean): Promise<unknown> {
  const [resumeAt, end] = context.cursorRange();
  const cursor = context.config.cursor as Cursor;
  let [start, checkpoint] = [resumeAt, context.checkpoint];
  if (!resume && checkpoint) [start, checkpoint] = [cursor.start_cursor, null];
  const every = (context.config.checkpoint_every as number | undefined) ?? 0;
  const failAt = context.input<number | undefined>("fail_once_at");
  let sum = checkpoint ? (checkpoint.data as SumCheckpoint).sum : 0;
  const processed: number[] = [];
  for (let i = start; i < end; i++) {
    if (context.attempt === 1 && i === failAt) throw new SimulatedCrash(`simulated crash before item ${i}`);
    sum += i;
    processed.push(i);
    if (every > 0 && (i + 1) % every === 0 && i + 1 < end) await context.saveCheckpoint(i + 1, { sum });
  }
  return { batch_id: cursor.batch_id, resumed_from: checkpoint ? checkpoint.cursor : null, processed, sum };
}

type Valued = { value: number; visited?: string[]; blob?: string };

function parents(context: StepContext): Valued[] {
  return Object.values(context.dependencyResults) as Valued[];
}

/** The single parent's `value`, else the context's `n`. */
function inputValue(context: StepContext): number {
  const [parent] = parents(context);
  return parent ? parent.value : context.input<number>("n");
}

function digest(value: unknown): { bytes: number; sha256: string } | null {
  if (typeof value !== "string") return null;
  return { bytes: Buffer.byteLength(value, "utf8"), sha256: createHash("sha256").update(value, "utf8").digest("hex") };
}

export const HANDLERS: HandlerLike[] = [
  defineHandler("square", (context) => {
    const n = inputValue(context);
    return { value: n * n };
  }),
  defineHandler("multiply_square", (context) => {
    const product = parents(context).reduce((acc, p) => acc * p.value, 1);
    return { value: product * product };
  }),
  defineHandler("sum", (context) => ({ value: parents(context).reduce((acc, p) => acc + p.value, 0) })),
  defineHandler("flaky_square", (context) => {
    if (context.attempt < 3) return failure(`simulated failure on attempt ${context.attempt}`, { errorType: "flaky" });
    const n = inputValue(context);
    return { value: n * n };
  }),
  defineHandler("decline_card", () => {
    throw new PermanentError("card ending 4242 was declined");
  }),
  defineHandler("upstream_unavailable", (context) =>
    failure(`inventory service unavailable on attempt ${context.attempt}`, { errorType: "upstream_unavailable" }),
  ),
  defineHandler("retry_after_once", (context) => {
    const ms = context.config.retry_after_ms as number;
    if (context.attempt === 1) throw new RetryableError(`rate limited: retry after ${ms} ms`, { retryAfter: ms / 1000 });
    return { attempt: context.attempt };
  }),
  defineHandler("always_slow", async (context) => {
    await sleep(context.config.sleep_ms as number, undefined, { signal: context.signal });
    return { attempt: context.attempt };
  }),
  defineHandler("return_nan", () => ({ ratio: NaN })),
  defineHandler("raise_unexpected", () => {
    throw new InventoryServiceDown("warehouse 7 unreachable: 倉庫 ✗");
  }),
  defineHandler("echo_text", (context) => {
    const text = context.input<string>("text");
    return {
      text,
      code_points: [...text].length,
      utf8_bytes: Buffer.byteLength(text, "utf8"),
      labels: context.input("labels"),
    };
  }),
  defineHandler("make_blob", (context) => {
    const blob = BLOB_UNIT.repeat((context.config.kib as number) * 64);
    return { bytes: Buffer.byteLength(blob, "utf8"), blob };
  }),
  defineHandler("digest_blobs", (context) => {
    const [parent] = parents(context);
    return { parent: digest(parent?.blob), context: digest(context.input("blob")) };
  }),
  defineHandler("constant", (context) => success(context.config.value ?? null)),
  defineHandler("publish_events", (context) => publishEvents(context)),
  defineHandler("collect", (context) => ({ received: context.dependencyResults })),
  defineHandler("relay", (context) => {
    const [parent] = parents(context);
    const visited = [...(parent?.visited ?? []), context.stepName];
    return success({ value: inputValue(context) * 2, visited }, { language: LANGUAGE });
  }),
  RouteBranches,
  SplitItems,
  defineHandler("sum_range", (context) => sumRange(context, true)),
];

/**
 * Deliberately wrong variants, swapped in by `worker.js --break CALLABLE` to show
 * that the suite catches a handler that drifts from the others.
 */
export const BROKEN: Record<string, FunctionHandler> = {
  square: defineHandler("square", (context) => {
    const n = inputValue(context);
    return { value: n * n + 1 }; // off by one
  }),
  sum_range: defineHandler("sum_range", (context) => sumRange(context, false)), // starts its range over on a retry
  publish_events: defineHandler("publish_events", (context) => publishEvents(context, "fast")), // every event fast, none stored
};
