// The Worker: the JS thread stays free while a poll waits, concurrency is never
// exceeded and completions are batched, graceful shutdown (stop() and SIGTERM),
// core log records reach the injected logger, the context's calls on the bridge.

import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { Bridge, Client, defineHandler, Engine, installLogForwarding, TemplateNotFound, Worker, WorkerClosed, type StepContext } from "tasker-core";
import { recordingLogger, sleep, sqliteDatabase, step, TEMPLATES_DIR } from "./support";

// The core's records are collected at one level per process, fixed by the first
// call: collect info here; each Worker/Engine still forwards only its logLevel.
installLogForwarding("info");

test("a 500 ms poll does not block the JS thread (setInterval keeps firing)", async () => {
  const db = sqliteDatabase();
  const bridge = await Bridge.open({ databaseUrl: db.url, namespaces: ["tstests"], templates: [TEMPLATES_DIR] });
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = performance.now();
    const events = await bridge.pollStepEvents(1, 500);
    const took = performance.now() - started;
    clearInterval(timer);
    assert.deepEqual(events, []);
    assert.ok(took >= 480, `the poll waited ${took.toFixed(0)} ms`);
    assert.ok(ticks >= 20, `only ${ticks} ticks of a 10 ms interval during a 500 ms poll`);
  } finally {
    await bridge.shutdown(0);
    db.cleanup();
  }
});

test("a worker never runs more than `concurrency` handlers and batches its completions", async () => {
  const db = sqliteDatabase();
  let running = 0;
  let peak = 0;
  const slow = defineHandler("slow", async (context) => {
    running++;
    peak = Math.max(peak, running);
    await sleep(Number(context.input("ms", 30)));
    running--;
    return { ok: true };
  });
  const logger = recordingLogger();
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [slow], concurrency: 3, logger });
  try {
    const bridge = await engine.bridge();
    const original = bridge.completeStepEventsJson.bind(bridge);
    const batchSizes: number[] = [];
    bridge.completeStepEventsJson = (text: string) => {
      batchSizes.push((JSON.parse(text) as unknown[]).length);
      return original(text);
    };
    await engine.start();
    const tasks = await Promise.all(Array.from({ length: 12 }, () => engine.createTask("tstests", "slow", { ms: 40 })));
    let maxHeld = 0;
    const watch = setInterval(() => {
      maxHeld = Math.max(maxHeld, bridge.workerStatus().outstanding);
    }, 5);
    const done = await Promise.all(tasks.map((t) => engine.waitForTask(t.task_uuid, 30_000)));
    clearInterval(watch);
    assert.ok(done.every((t) => t.state === "complete"));
    assert.equal(peak, 3, "three handlers ran at once, never more");
    assert.ok(maxHeld <= 3, `the bridge held ${maxHeld} events`);
    assert.equal(batchSizes.reduce((a, b) => a + b, 0), 12, "every result sent once");
    assert.ok(batchSizes.some((n) => n > 1), `results were batched: ${JSON.stringify(batchSizes)}`);
  } finally {
    await engine.close();
    db.cleanup();
  }
});

test("stop() drains: running handlers finish within the grace period, nothing is lost", async () => {
  const db = sqliteDatabase();
  let finished = 0;
  const slow = defineHandler("slow", async (context) => {
    await sleep(Number(context.input("ms")));
    finished++;
    return { slept: context.input("ms") };
  });
  const worker = new Worker({
    databaseUrl: db.url,
    templates: [TEMPLATES_DIR],
    namespaces: ["tstests"],
    handlers: [slow],
    concurrency: 2,
    shutdownGraceMs: 5000,
    handleSignals: false,
    logger: recordingLogger(),
  });
  const running = worker.run();
  await worker.start();
  const bridge = worker.bridge;
  const a = await bridge.createTask("tstests", "slow", { ms: 300 });
  const b = await bridge.createTask("tstests", "slow", { ms: 300 });
  for (let i = 0; i < 100 && worker.inFlight < 2; i++) await sleep(10);
  assert.equal(worker.inFlight, 2);
  const report = await worker.stop();
  assert.deepEqual(await running, report);
  assert.deepEqual(report, { drained: 2, released: 0 });
  assert.equal(finished, 2);
  await assert.rejects(bridge.getTask(a.task_uuid), WorkerClosed);
  // Reopen the database: both steps completed.
  const check = await Bridge.open({ databaseUrl: db.url });
  try {
    for (const t of [a, b]) assert.equal((await check.getTask(t.task_uuid)).state, "complete");
  } finally {
    await check.shutdown(0);
    db.cleanup();
  }
});

test("a handler still running after the grace period is handed back, not failed", async () => {
  const db = sqliteDatabase();
  const slow = defineHandler("slow", async (context) => {
    await sleep(Number(context.input("ms")));
    return { done: true };
  });
  const worker = new Worker({
    databaseUrl: db.url,
    templates: [TEMPLATES_DIR],
    namespaces: ["tstests"],
    handlers: [slow],
    shutdownGraceMs: 100,
    handleSignals: false,
    logger: recordingLogger(),
  });
  await worker.start();
  const task = await worker.bridge.createTask("tstests", "slow", { ms: 1500 });
  for (let i = 0; i < 100 && worker.inFlight < 1; i++) await sleep(10);
  const report = await worker.stop();
  assert.deepEqual(report, { drained: 0, released: 1 });
  const check = await Bridge.open({ databaseUrl: db.url });
  try {
    const view = await check.getTask(task.task_uuid);
    assert.equal(step(view, "slow").state, "enqueued", "released without a failure");
    assert.equal(step(view, "slow").attempts, 0, "a released step does not count an attempt");
  } finally {
    await check.shutdown(0);
    db.cleanup();
  }
});

test("SIGTERM stops worker.run() with a drain", async () => {
  const db = sqliteDatabase();
  const worker = new Worker({
    databaseUrl: db.url,
    templates: [TEMPLATES_DIR],
    namespaces: ["tstests"],
    handlers: [defineHandler("slow", async () => ({}))],
    logger: recordingLogger(),
  });
  const before = process.listenerCount("SIGTERM");
  const running = worker.run();
  await worker.start();
  assert.equal(process.listenerCount("SIGTERM"), before + 1);
  process.kill(process.pid, "SIGTERM");
  const report = await running;
  assert.deepEqual(report, { drained: 0, released: 0 });
  assert.equal(process.listenerCount("SIGTERM"), before, "the signal handler is removed");
  assert.equal(worker.bridge.workerStatus().state, "closed");
  db.cleanup();
});

test("core log records go to the injected logger; context.logger adds the correlation id", async () => {
  const db = sqliteDatabase();
  const logger = recordingLogger();
  let correlation = "";
  let taskUuid = "";
  const handler = defineHandler("flaky", (context: StepContext) => {
    correlation = context.correlationId;
    taskUuid = context.taskUuid;
    context.logger.info("handling", { extra: 1 });
    if (context.attempt === 1) throw new Error("first attempt fails");
    return {};
  });
  const engine = new Engine({
    databaseUrl: db.url,
    templates: [TEMPLATES_DIR],
    handlers: [handler],
    logger,
    logLevel: "info",
  });
  let taskCorrelation = "";
  try {
    const task = await engine.run("tstests", "flaky", {});
    assert.equal(task.state, "complete");
    taskCorrelation = task.correlation_id;
  } finally {
    await engine.close();
    db.cleanup();
  }
  // A handler's log line carries its task's correlation id.
  assert.equal(correlation, taskCorrelation);
  const mine = logger.lines.find((l) => l.message === "handling");
  assert.ok(mine, "the handler's line reached the logger");
  assert.deepEqual(mine.args.at(-1), { correlation_id: correlation, step_name: "flaky", task_uuid: taskUuid, extra: 1 });
  // The core logs each failed attempt at info, with the correlation id.
  const core = logger.lines.filter((l) => l.message.startsWith("[tasker-core ") && l.message.includes("attempt failed"));
  assert.equal(core.length, 1, JSON.stringify(logger.lines));
  assert.equal(core[0].level, "info");
  assert.ok(core[0].message.includes(correlation), core[0].message);
  assert.ok(core[0].message.includes("first attempt fails"), core[0].message);
});

test("core records below the worker's logLevel are not forwarded", async () => {
  const db = sqliteDatabase();
  const logger = recordingLogger();
  const handler = defineHandler("flaky", (context: StepContext) => {
    if (context.attempt === 1) throw new Error("first attempt fails");
    return {};
  });
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [handler], logger });
  try {
    assert.equal((await engine.run("tstests", "flaky", {})).state, "complete");
  } finally {
    await engine.close();
    db.cleanup();
  }
  assert.deepEqual(logger.lines.filter((l) => l.message.startsWith("[tasker-core ")), [], "the default level is warn");
});

test("the context's checkpoint, lease and publish calls reach the bridge", async () => {
  const db = sqliteDatabase();
  const seen: Record<string, unknown> = {};
  const inspect = defineHandler("inspect_context", async (context) => {
    if (context.config.role === "parent") {
      seen.parent = {
        config: context.config,
        input: context.input("order"),
        missing: context.input("nope", "fallback"),
        isRetry: context.isRetry,
        isLastAttempt: context.isLastAttempt,
        remaining: context.remainingMs > 0,
        checkpoint: context.checkpoint,
      };
      const published = await context.publish("order.seen", { order: context.input("order") });
      seen.published = published;
      const before = context.deadlineMs;
      const after = await context.extendLease();
      seen.extended = after >= before && context.deadlineMs === after;
      return { parent: true };
    }
    if (context.attempt === 1) {
      await context.saveCheckpoint(40, { processed: [1, 2] });
      throw new Error("fail after a checkpoint");
    }
    seen.child = {
      attempt: context.attempt,
      isRetry: context.isRetry,
      isLastAttempt: context.isLastAttempt,
      checkpoint: { cursor: context.checkpoint?.cursor, data: context.checkpoint?.data },
      dependency: context.dependency("parent"),
      missingDependency: context.dependency("nope"),
    };
    return { child: true };
  });
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [inspect], logger: recordingLogger() });
  try {
    const task = await engine.run("tstests", "context", { order: 42 });
    assert.equal(task.state, "complete", JSON.stringify(task.steps));
    assert.deepEqual(seen.parent, {
      config: { role: "parent", limits: [1, 2] },
      input: 42,
      missing: "fallback",
      isRetry: false,
      isLastAttempt: false,
      remaining: true,
      checkpoint: null,
    });
    const published = seen.published as Record<string, unknown>;
    assert.equal(published.name, "order.seen");
    assert.deepEqual(published.payload, { order: 42 });
    assert.equal(published.mode, "fast");
    assert.equal(published.task_uuid, task.task_uuid);
    assert.equal(published.step_name, "parent");
    assert.equal(published.correlation_id, task.correlation_id);
    assert.equal(seen.extended, true);
    assert.deepEqual(seen.child, {
      attempt: 2,
      isRetry: true,
      isLastAttempt: true,
      checkpoint: { cursor: 40, data: { processed: [1, 2] } },
      dependency: { parent: true },
      missingDependency: undefined,
    });
  } finally {
    await engine.close();
    db.cleanup();
  }
});

test("extendLease from a handler keeps a step past its original timeout", async () => {
  const db = sqliteDatabase();
  const handler = defineHandler("extends_lease", async (context) => {
    const total = Number(context.config.ms);
    const started = Date.now();
    while (Date.now() - started < total) {
      await sleep(300);
      await context.extendLease();
    }
    return { ran_ms: Date.now() - started };
  });
  const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [handler], logger: recordingLogger() });
  try {
    const task = await engine.run("tstests", "short_lease", {});
    assert.equal(task.state, "complete", JSON.stringify(task.steps));
    assert.ok((step(task, "long_runner").result as { ran_ms: number }).ran_ms >= 1600);
  } finally {
    await engine.close();
    db.cleanup();
  }
});

test("a Client creates and reads tasks that a Worker (sharing the database) runs", async () => {
  const db = sqliteDatabase();
  const worker = new Worker({
    databaseUrl: db.url,
    templates: [TEMPLATES_DIR],
    namespaces: ["tstests"],
    handlers: { slow: (context: StepContext) => ({ echoed: context.input("ms") }) },
    handleSignals: false,
    logger: recordingLogger(),
  });
  const running = worker.run();
  await worker.start(); // registers the templates in the database
  const client = new Client({ databaseUrl: db.url, logger: recordingLogger() });
  try {
    const created = await client.createTask("tstests", "slow", { ms: 7 }, { idempotencyKey: "once" });
    const again = await client.createTask("tstests", "slow", { ms: 8 }, { idempotencyKey: "once" });
    assert.equal(again.task_uuid, created.task_uuid);
    const done = await client.waitForTask(created.task_uuid, 10_000);
    assert.equal(done.state, "complete");
    assert.deepEqual(step(done, "slow").result, { echoed: 7 });
    assert.equal((await client.getTask(created.task_uuid)).state, "complete");
    await assert.rejects(client.createTask("tstests", "nope", {}), TemplateNotFound);
  } finally {
    await client.close();
    await worker.stop();
    await running;
    db.cleanup();
  }
  if (!process.env.TASKER_DATABASE_URL) {
    assert.throws(() => new Client({}).bridge(), /databaseUrl/, "a client needs a database");
  }
});

test("an engine serves the namespaces its templates' steps name", async () => {
  const db = sqliteDatabase();
  const template = path.join(TEMPLATES_DIR, "routed.yaml");
  const whereAmI = defineHandler("where_am_i", (context: StepContext) => ({ namespace: context.namespace }));
  const engine = new Engine({ databaseUrl: db.url, templates: [template], handlers: [whereAmI] });
  try {
    assert.deepEqual(engine.namespaces, ["tsrouted", "tsrouted.elsewhere", "tsrouted.flow"]);
    const task = await engine.run("tsrouted", "routed", {}, { timeoutMs: 30_000 });
    assert.equal(task.state, "complete");
    // Handlers see their template's namespace, wherever the step was routed.
    assert.deepEqual(task.steps.map((s) => s.result), [{ namespace: "tsrouted" }, { namespace: "tsrouted" }, { namespace: "tsrouted" }]);
  } finally {
    await engine.close();
    db.cleanup();
  }
});
