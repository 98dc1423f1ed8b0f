// The failure table from the handler's side: thrown errors, PermanentError vs
// RetryableError, returned failures, Retry-After (asserted from the recorded step
// data), handler timeouts, results that cannot be recorded, method dispatch and
// unknown callables.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  defineHandler,
  Engine,
  failure,
  PermanentError,
  RetryableError,
  StepHandler,
  success,
  type HandlerLike,
  type StepContext,
  type StepResult,
  type TaskView,
} from "tasker-core";
import { recordingLogger, sleep, sqliteDatabase, step, TEMPLATES_DIR } from "./support";

class CardDeclined extends PermanentError {}

async function runWith(handlers: HandlerLike[] | Record<string, HandlerLike>, name: string, timeoutMs = 30_000): Promise<TaskView> {
  const db = sqliteDatabase();
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers, logger: recordingLogger() });
  try {
    return await engine.run("tstests", name, {}, { timeoutMs });
  } finally {
    await engine.close();
    db.cleanup();
  }
}

const FAILURE_KINDS = ["permanent", "retryable", "uncaught", "returned_failure", "returned_permanent"];

/** Runs one task per failure kind (a permanent failure ends its task) on one engine. */
async function runFailures(handlers: HandlerLike[]): Promise<TaskView> {
  const db = sqliteDatabase();
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers, logger: recordingLogger() });
  try {
    const created = await Promise.all(FAILURE_KINDS.map((k) => engine.createTask("tstests", `failure_${k}`, {})));
    const done = await Promise.all(created.map((t) => engine.waitForTask(t.task_uuid, 30_000)));
    for (const t of done) assert.equal(t.state, "error", `${t.name} ended in ${t.state}`);
    // One view holding every step, for step(task, kind).
    return { ...done[0], steps: done.flatMap((t) => t.steps) };
  } finally {
    await engine.close();
    db.cleanup();
  }
}

test("thrown errors, permanent and retryable, and returned failures follow the failure table", async () => {
  class ThrowPermanent extends StepHandler {
    static override handlerName = "throw_permanent";
    async call(): Promise<StepResult> {
      throw new CardDeclined("card declined", { code: "CARD_DECLINED", metadata: { card: "visa" } });
    }
  }
  const handlers: HandlerLike[] = [
    ThrowPermanent,
    defineHandler("throw_retryable", async () => {
      throw new RetryableError("try again later");
    }),
    // A synchronous throw from a plain (non-async) function.
    defineHandler("throw_uncaught", (context: StepContext) => {
      (context.input("missing") as { deref: number }).deref; // TypeError
      return null;
    }),
    defineHandler("return_failure", () => failure("nope", { errorType: "custom_failure" })),
    defineHandler("return_permanent", () =>
      failure("bad input", { errorType: "bad_input", retryable: false, retryAfter: 3, code: "E42" }),
    ),
  ];
  const task = await runFailures(handlers);

  const permanent = step(task, "permanent");
  assert.equal(permanent.state, "error");
  assert.equal(permanent.attempts, 1, "a PermanentError is not retried");
  assert.equal(permanent.error?.error_type, "CardDeclined", "error_type is the class name");
  assert.equal(permanent.error?.retryable, false);
  assert.equal(permanent.error?.message, "card declined");
  assert.equal(permanent.error?.code, "CARD_DECLINED");
  assert.match(String(permanent.error?.backtrace), /CardDeclined: card declined/);

  const retryable = step(task, "retryable");
  assert.equal(retryable.attempts, 2, "retried up to max_attempts");
  assert.equal(retryable.error?.error_type, "RetryableError");
  assert.equal(retryable.error?.retryable, true);

  const uncaught = step(task, "uncaught");
  assert.equal(uncaught.attempts, 2, "an uncaught error is retryable");
  assert.equal(uncaught.error?.error_type, "TypeError");
  assert.equal(uncaught.error?.retryable, true);
  assert.match(String(uncaught.error?.backtrace), /TypeError/);

  const returned = step(task, "returned_failure");
  assert.equal(returned.attempts, 2, "failure() is retryable by default");
  assert.deepEqual(
    { type: returned.error?.error_type, retryable: returned.error?.retryable, message: returned.error?.message },
    { type: "custom_failure", retryable: true, message: "nope" },
  );

  const permanentReturn = step(task, "returned_permanent");
  assert.equal(permanentReturn.attempts, 1);
  assert.equal(permanentReturn.error?.retryable, false);
  assert.equal(permanentReturn.error?.code, "E42");
  assert.equal(permanentReturn.error?.retry_after_ms, undefined, "no retry hint on a permanent failure");
});

test("thrown non-Error values are retryable failures named after their type", async () => {
  const handlers = [
    defineHandler("throw_permanent", () => {
      throw "a bare string";
    }),
    defineHandler("throw_retryable", async () => {
      throw { reason: "an object" };
    }),
    defineHandler("throw_uncaught", async () => {
      throw null;
    }),
    defineHandler("return_failure", () => failure("x")),
    defineHandler("return_permanent", () => failure("x", { retryable: false })),
  ];
  const task = await runFailures(handlers);
  assert.equal(step(task, "permanent").error?.error_type, "string");
  assert.equal(step(task, "permanent").error?.message, "a bare string");
  assert.equal(step(task, "permanent").attempts, 3, "a thrown string is retryable");
  assert.equal(step(task, "retryable").error?.error_type, "Object");
  assert.match(String(step(task, "retryable").error?.message), /an object/);
  assert.equal(step(task, "uncaught").error?.error_type, "null");
  assert.equal(step(task, "returned_failure").error?.error_type, "handler_error", "failure()'s default error type");
});

test("a RetryableError's retryAfter is recorded and honoured", async () => {
  const times: Record<number, number> = {};
  const throttled = defineHandler("throttled", (context) => {
    times[context.attempt] ??= Date.now();
    if (context.attempt === 1) throw new RetryableError("slow down", { retryAfter: 1.5 });
    return { attempt: context.attempt };
  });
  const db = sqliteDatabase();
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [throttled], logger: recordingLogger() });
  try {
    const created = await engine.createTask("tstests", "retry_after", {});
    // While it waits for its retry, the recorded failure carries the hint and the
    // step's ready_at is at least 1.5 s after the first attempt.
    let waiting: TaskView | undefined;
    for (let i = 0; i < 200 && waiting === undefined; i++) {
      const view = await engine.getTask(created.task_uuid);
      if (step(view, "throttled").state === "waiting_for_retry") waiting = view;
      else await sleep(10);
    }
    assert.ok(waiting, "the step went to waiting_for_retry");
    const s = step(waiting, "throttled");
    assert.equal(s.error?.retry_after_ms, 1500);
    assert.equal(s.error?.error_type, "RetryableError");
    assert.ok(s.ready_at !== null && s.ready_at - times[1] >= 1500 - 5, `ready_at ${s.ready_at} vs first attempt ${times[1]}`);

    const task = await engine.waitForTask(created.task_uuid, 30_000);
    assert.equal(task.state, "complete");
    const done = step(task, "throttled");
    assert.equal(done.attempts, 2);
    assert.deepEqual(done.result, { attempt: 2 });
    assert.ok(times[2] - times[1] >= 1500 - 5, `attempt 2 came ${times[2] - times[1]} ms after attempt 1`);
  } finally {
    await engine.close();
    db.cleanup();
  }
});

test("a handler past its timeout fails as timeout; its signal aborts; its late result is ignored", async () => {
  let stubbornFinished = false;
  let lateSignalAborted: boolean | undefined;
  let cooperativeAborted = false;
  const handlers = [
    defineHandler("sleep_ignoring_signal", async (context) => {
      await sleep(Number(context.config.ms));
      lateSignalAborted = context.signal.aborted; // first looked at after the deadline
      stubbornFinished = true;
      return { late: true };
    }),
    defineHandler("sleep_until_aborted", (context) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve({ late: true }), Number(context.config.ms));
        context.signal.addEventListener("abort", () => {
          cooperativeAborted = true;
          clearTimeout(timer);
          reject(new Error("aborted"));
        });
      }),
    ),
  ];
  const db = sqliteDatabase();
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers, logger: recordingLogger() });
  try {
    const started = Date.now();
    const task = await engine.run("tstests", "timeouts", {}, { timeoutMs: 20_000 });
    const took = Date.now() - started;
    assert.equal(task.state, "error");
    assert.ok(took < 2400, `the timeout did not wait for the stubborn handler (${took} ms)`);
    for (const name of ["stubborn", "cooperative"]) {
      const s = step(task, name);
      assert.equal(s.error?.error_type, "timeout", name);
      assert.equal(s.error?.retryable, true, name);
      assert.equal(s.attempts, 1, name);
    }
    assert.ok(cooperativeAborted, "context.signal aborted at the deadline");
    // The stubborn handler's late result changes nothing.
    await sleep(2600 - (Date.now() - started));
    assert.ok(stubbornFinished);
    assert.equal(lateSignalAborted, true, "a signal first asked for after the deadline is already aborted");
    const after = await engine.getTask(task.task_uuid);
    assert.equal(step(after, "stubborn").state, "error");
    assert.equal(step(after, "stubborn").error?.error_type, "timeout");
  } finally {
    await engine.close();
    db.cleanup();
  }
});

test("results that cannot be serialised are recorded as invalid_result (not retried)", async () => {
  class ClassReturningObject extends StepHandler {
    static override handlerName = "class_returning_object";
    async call(): Promise<StepResult> {
      return { value: 1 } as unknown as StepResult; // not this.success(...)
    }
  }
  const handlers: HandlerLike[] = [
    defineHandler("bigint_result", () => ({ big: 10n })),
    defineHandler("circular_result", () => {
      const a: Record<string, unknown> = { name: "a" };
      a.self = a;
      return a;
    }),
    ClassReturningObject,
    defineHandler("bigint_metadata", async () => success({ ok: true }, { size: 2n ** 70n })),
    defineHandler("healthy", () => ({ fine: true })),
  ];
  const task = await runWith(handlers, "invalid_results");
  for (const [name, pattern] of [
    ["bigint", /BigInt/],
    ["circular", /circular/i],
    ["plain_object_from_class", /expected a StepResult/],
    ["bigint_metadata", /BigInt/],
  ] as const) {
    const s = step(task, name);
    assert.equal(s.state, "error", name);
    assert.equal(s.error?.error_type, "invalid_result", name);
    assert.equal(s.error?.retryable, false, name);
    assert.equal(s.attempts, 1, `${name} is not retried`);
    assert.match(String(s.error?.message), pattern, name);
  }
  assert.equal(step(task, "healthy").state, "complete", "one bad result does not spoil the batch");
  assert.deepEqual(step(task, "healthy").result, { fine: true });
});

test("handler.method selects the entry point; unknown methods and callables fail permanently", async () => {
  const seenConfigs: unknown[] = [];
  class Greeter extends StepHandler {
    static override handlerName = "greeter";
    call(): StepResult {
      seenConfigs.push(this.config);
      return this.success({ said: `${this.config.greeting} world`, method: "call" });
    }
    shout(): StepResult {
      return this.success({ said: `${String(this.config.greeting).toUpperCase()} WORLD`, method: "shout" });
    }
    async whisper(context: StepContext): Promise<StepResult> {
      await sleep(5);
      return this.success({ said: `${this.config.greeting}...`, method: "whisper", step: context.stepName });
    }
  }
  const handlers = { greeter: Greeter, plain_function: (context: StepContext) => ({ step: context.stepName }) };
  const task = await runWith(handlers, "dispatch");
  assert.deepEqual(step(task, "default_method").result, { said: "hello world", method: "call" });
  assert.deepEqual(step(task, "other_method").result, { said: "HELLO WORLD", method: "shout" });
  assert.deepEqual(step(task, "async_method").result, { said: "hello...", method: "whisper", step: "async_method" });
  assert.deepEqual(step(task, "function_default").result, { step: "function_default" });
  assert.deepEqual(seenConfigs, [{ greeting: "hello" }], "the instance's config is the initialization");
  for (const name of ["missing_method", "helper_method", "function_method"]) {
    const s = step(task, name);
    assert.equal(s.error?.error_type, "unknown_method", name);
    assert.equal(s.error?.retryable, false, name);
    assert.equal(s.attempts, 1, name);
  }
  const nowhere = step(task, "nowhere");
  assert.equal(nowhere.error?.error_type, "handler_not_found");
  assert.equal(nowhere.error?.retryable, false);
  assert.equal(nowhere.attempts, 1);
  assert.match(String(nowhere.error?.message), /no_such_handler/);
  assert.match(String(nowhere.error?.message), /greeter/, "the message lists what is registered");
});
