// The Bridge one-to-one, on both backends: capacity, release, checkpoints carried
// to the retried attempt, lease extension, domain events, drain and close, task
// creation options; and the loopback bridge.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Bridge, UnknownEvent, WorkerClosed, type StepEvent } from "tasker-core";
import { BACKENDS, sleep, TEMPLATES_DIR } from "./support";

async function pollN(bridge: Bridge, n: number, timeoutMs = 10_000): Promise<StepEvent[]> {
  const events: StepEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (events.length < n && Date.now() < deadline) events.push(...(await bridge.pollStepEvents(n - events.length, 200)));
  return events;
}

const ok = (ev: StepEvent, result: unknown = { ok: true }) => ({ event_id: ev.event_id, success: true, result });

for (const backend of BACKENDS) {
  describe(`Bridge on ${backend.name}`, () => {
    test("capacity, release, checkpoints and leases", async () => {
      const db = backend.open();
      const bridge = await Bridge.open({
        databaseUrl: db.url,
        namespaces: ["tstests"],
        concurrency: 2,
        templates: [TEMPLATES_DIR],
        pollIntervalMs: 50,
      });
      try {
        const tasks = [];
        for (let i = 0; i < 4; i++) tasks.push(await bridge.createTask("tstests", "single", { i }));
        const first = await pollN(bridge, 2);
        assert.equal(first.length, 2);
        assert.deepEqual(await bridge.pollStepEvents(10, 300), [], "never more than concurrency held");
        const status = bridge.workerStatus();
        assert.deepEqual([status.state, status.outstanding, status.concurrency], ["running", 2, 2]);
        assert.deepEqual(status.namespaces, ["tstests"]);

        // Release one: it comes back without counting an attempt.
        const [a, b] = first;
        assert.equal(a.handler.callable, "host.work");
        assert.deepEqual(a.handler.initialization, { factor: 2 });
        assert.equal(await bridge.releaseStepEvent(a.event_id), true);
        assert.equal(await bridge.releaseStepEvent(a.event_id), false);
        await assert.rejects(bridge.extendLease(a.event_id), UnknownEvent);

        // Checkpoint b, fail it: the retried event carries the checkpoint.
        await bridge.checkpointStep(b.event_id, 7, { seen: ["x"] });
        const deadline = await bridge.extendLease(b.event_id);
        assert.ok(deadline >= b.deadline_ms, "the deadline moved forward");
        const report = await bridge.completeStepEvents([
          { event_id: b.event_id, success: false, error: { message: "again", error_type: "flaky", retryable: true } },
        ]);
        assert.deepEqual(report, { accepted: 1, invalid: [], rejected: [] });
        // Run everything else; keep b's second attempt.
        let retried: StepEvent | undefined;
        let aAgain: StepEvent | undefined;
        const until = Date.now() + 15_000;
        while ((retried === undefined || aAgain === undefined) && Date.now() < until) {
          for (const e of await bridge.pollStepEvents(2, 200)) {
            if (e.step_uuid === b.step_uuid) {
              retried = e;
              continue;
            }
            if (e.step_uuid === a.step_uuid) aAgain = e;
            await bridge.completeStepEvents([ok(e)]);
          }
        }
        assert.ok(retried, "b came back for its second attempt");
        assert.equal(retried.attempt, 2);
        assert.deepEqual({ cursor: retried.checkpoint?.cursor, data: retried.checkpoint?.data }, { cursor: 7, data: { seen: ["x"] } });
        assert.ok(aAgain, "the released step came back");
        assert.equal(aAgain.attempt, 1, "a release does not count an attempt");

        // A result that cannot be serialised is sent as an invalid_result failure
        // of its event (encoded here, so the core sees a well-formed failure).
        const r2 = await bridge.completeStepEvents([{ event_id: retried.event_id, success: true, result: { n: 10n } } as never]);
        assert.deepEqual(r2, { accepted: 1, invalid: [], rejected: [] });
        await assert.rejects(bridge.checkpointStep(retried.event_id, 1, null), UnknownEvent);
        const views = await Promise.all(tasks.map((t) => bridge.waitForTask(t.task_uuid, 10_000)));
        const bView = views.find((v) => v.steps[0].step_uuid === b.step_uuid);
        assert.equal(bView?.steps[0].error?.error_type, "invalid_result");
        assert.equal(views.filter((v) => v.state === "complete").length, 3);
      } finally {
        await bridge.shutdown(0);
        db.cleanup();
      }
    });

    test("drain: polls return [] at once, outstanding results are still taken, then closed", async () => {
      const db = backend.open();
      const bridge = await Bridge.open({ databaseUrl: db.url, namespaces: ["tstests"], templates: [TEMPLATES_DIR] });
      let taskUuid = "";
      try {
        const task = await bridge.createTask("tstests", "single", {});
        taskUuid = task.task_uuid;
        const [ev] = await pollN(bridge, 1);
        const pending = bridge.pollStepEvents(1, Infinity); // a year, capped by the addon
        const draining = bridge.shutdown(5000);
        const started = Date.now();
        assert.deepEqual(await pending, [], "a waiting poll returns at once");
        assert.deepEqual(await bridge.pollStepEvents(1, 5000), []);
        assert.ok(Date.now() - started < 1000);
        assert.equal(bridge.workerStatus().state, "draining");
        await sleep(50);
        const report = await bridge.completeStepEvents([ok(ev, { v: 1 })]);
        assert.equal(report.accepted, 1);
        assert.deepEqual(await draining, { drained: 1, released: 0 });
        assert.equal(bridge.workerStatus().state, "closed");
        assert.deepEqual(await bridge.shutdown(0), { drained: 0, released: 0 }, "shutdown is idempotent");
        await assert.rejects(bridge.pollStepEvents(1, 10), WorkerClosed);
        await assert.rejects(bridge.getTask(task.task_uuid), WorkerClosed);
      } finally {
        await bridge.shutdown(0);
      }
      // The result was written before the close.
      const check = await Bridge.open({ databaseUrl: db.url });
      try {
        const view = await check.getTask(taskUuid);
        assert.equal(view.state, "complete");
        assert.deepEqual(view.steps[0].result, { v: 1 });
      } finally {
        await check.shutdown(0);
        db.cleanup();
      }
    });

    test("task options and domain events", async () => {
      const db = backend.open();
      const bridge = await Bridge.open({ databaseUrl: db.url, namespaces: ["tstests"], templates: [TEMPLATES_DIR] });
      try {
        const correlationId = "019ac152-7d00-7002-800e-5eed00020002";
        const t1 = await bridge.createTask("tstests", "single", { a: 1 }, { version: "1.0.0", idempotencyKey: "k-1", correlationId });
        assert.equal(t1.correlation_id, correlationId);
        assert.equal(t1.version, "1.0.0");
        assert.deepEqual(t1.context, { a: 1 });
        const t2 = await bridge.createTask("tstests", "single", { a: 2 }, { idempotencyKey: "k-1" });
        assert.equal(t2.task_uuid, t1.task_uuid, "a used idempotency key returns the existing task");
        const [ev] = await pollN(bridge, 1);
        const fromStep = await bridge.publishDomainEvent("order.shipped", { id: 1 }, "durable", ev.event_id);
        assert.deepEqual(
          [fromStep.name, fromStep.mode, fromStep.task_uuid, fromStep.step_name, fromStep.correlation_id],
          ["order.shipped", "durable", t1.task_uuid, "only", correlationId],
        );
        const bare = await bridge.publishDomainEvent("ping", [1, 2]);
        assert.deepEqual([bare.mode, bare.task_uuid, bare.step_uuid], ["fast", null, null]);
        assert.deepEqual(bare.payload, [1, 2]);
        await assert.rejects(bridge.publishDomainEvent("x", {}, "fast", "019ac152-7d00-7002-800e-5eed00020009"), UnknownEvent);
        await bridge.completeStepEvents([ok(ev)]);
        const done = await bridge.waitForTask(t1.task_uuid, 10_000);
        assert.equal(done.state, "complete");
      } finally {
        await bridge.shutdown(0);
        db.cleanup();
      }
    });
  });
}

test("the loopback bridge hands out synthetic events and takes their results", async () => {
  const bridge = await Bridge.loopback(4);
  try {
    const events = await bridge.pollStepEvents(10, 1000);
    assert.equal(events.length, 4, "at most concurrency");
    const report = await bridge.completeStepEvents(events.map((e) => ok(e)));
    assert.equal(report.accepted, 4);
    assert.equal((await bridge.pollStepEvents(2, 1000)).length, 2);
  } finally {
    await bridge.shutdown(0);
  }
});
