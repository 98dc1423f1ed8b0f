/**
 * EventSubscriber and explicit publishes: durable delivery with the step's
 * result, at-least-once redelivery without an ack, independent consumers,
 * schema rejection, and a poll that leaves the JavaScript thread free; on SQLite
 * and PostgreSQL.
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { Bridge, defineHandler, Engine, EventSubscriber, InvalidInput } from "tasker-core";
import { BACKENDS, GOLDEN_DIR, sqliteDatabase, TEMPLATES_DIR } from "./support";

const publish = defineHandler("publish", async (context) => {
  let rejected = "";
  try {
    await context.publish("tstests.shipped", { id: "seven" }, "durable");
  } catch (e) {
    assert.ok(e instanceof InvalidInput, String(e));
    rejected = (e as Error).message;
  }
  await context.publish("tstests.shipped", { id: 7 }, "broadcast");
  return { rejected };
});

function goldenKeys(): string[][] {
  const manifest: { file: string; schema: string; valid: boolean }[] = JSON.parse(
    fs.readFileSync(path.join(GOLDEN_DIR, "manifest.json"), "utf8"),
  );
  const files = manifest.filter((e) => e.schema === "stored_domain_event" && e.valid).map((e) => e.file);
  assert.ok(files.length > 0, "no valid stored_domain_event golden file");
  return files.map((f) => Object.keys(JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, f), "utf8"))).sort());
}

for (const backend of BACKENDS) {
  describe(`domain events (${backend.name})`, () => {
    test("durable events are delivered at least once", async () => {
      const db = backend.open();
      const engine = new Engine({
        databaseUrl: db.url,
        templates: [path.join(TEMPLATES_DIR, "events.yaml")],
        handlers: [publish],
      });
      try {
        const task = await engine.run("tstests", "events", {});
        assert.equal(task.state, "complete", JSON.stringify(task.steps));
        const result = task.steps[0].result as { rejected: string };
        assert.match(result.rejected, /fails the declared schema/);
        const bridge = await engine.bridge();
        const billing = new EventSubscriber(bridge, "ts-billing");
        assert.equal(billing.consumer, "ts-billing");
        const events = await billing.poll(10, 5000);
        assert.deepEqual(events.map((e) => e.name), ["tstests.noted", "tstests.shipped"]);
        assert.deepEqual(events[1].payload, { id: 7 });
        assert.equal(events[1].mode, "broadcast");
        assert.equal(events[1].task_uuid, task.task_uuid);
        assert.ok(events[0].sequence < events[1].sequence);
        for (const keys of goldenKeys()) assert.deepEqual(Object.keys(events[0]).sort(), keys);
        assert.deepEqual(await billing.poll(10, 0), [], "the session moved past what it handed out");
        const again = await new EventSubscriber(bridge, "ts-billing").poll(10, 1000);
        assert.deepEqual(again.map((e) => e.sequence), events.map((e) => e.sequence), "not acked: redelivered");
        assert.equal(await billing.ack(events[0].sequence), events[0].sequence);
        await billing.rewind();
        assert.deepEqual((await billing.poll(10, 0)).map((e) => e.name), ["tstests.shipped"]);
        await billing.ack(events[1].sequence);
        assert.deepEqual(await new EventSubscriber(bridge, "ts-billing").poll(10, 0), []);
        const audit = new EventSubscriber(bridge, "ts-audit", { namePattern: "*.shipped" });
        assert.deepEqual((await audit.poll(10, 0)).map((e) => e.name), ["tstests.shipped"]);
        for await (const first of new EventSubscriber(bridge, "ts-iter")) {
          assert.equal(first.name, "tstests.noted");
          break;
        }
      } finally {
        await engine.close();
        db.cleanup();
      }
    });
  });
}

test("an explicit publish without a step is stored at once", async () => {
  const db = sqliteDatabase();
  const bridge = await Bridge.open({ databaseUrl: db.url });
  try {
    const event = await bridge.publishDomainEvent("tstests.ping", [1, 2], "durable");
    const got = await new EventSubscriber(bridge, "ts-ping").poll(10, 0);
    assert.deepEqual(
      got.map((e) => [e.event_id, e.payload, e.step_uuid]),
      [[event.event_id, [1, 2], null]],
    );
    assert.throws(() => new EventSubscriber(bridge, ""), InvalidInput);
  } finally {
    await bridge.shutdown(0);
    db.cleanup();
  }
});

test("a subscriber's poll leaves the JavaScript thread free", async () => {
  const db = sqliteDatabase();
  const bridge = await Bridge.open({ databaseUrl: db.url });
  try {
    const subscriber = new EventSubscriber(bridge, "ts-idle");
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 10);
    try {
      assert.deepEqual(await subscriber.poll(10, 500), []);
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 10, `the event loop ticked only ${ticks} times during the poll`);
  } finally {
    await bridge.shutdown(0);
    db.cleanup();
  }
});
