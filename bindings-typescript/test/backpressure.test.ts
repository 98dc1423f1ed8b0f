// Backpressure: an overloaded core refuses new tasks with a retryable error that
// says when to try again (`Overloaded.retryAfter`), and keeps every task it did
// accept.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Client, Overloaded, TaskNotFound } from "tasker-core";
import { recordingLogger, sleep, sqliteDatabase, TEMPLATES_DIR } from "./support";

test("an overloaded client throws a retryable error with retryAfter", async () => {
  // No worker serves the namespace, so its ready steps pile up past a limit of 0.
  // (Each test file runs in its own process: these variables stay in this file.)
  process.env.TASKER_BACKPRESSURE_MAX_READY_STEPS = "0";
  process.env.TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS = "20";
  const db = sqliteDatabase();
  const client = new Client({ databaseUrl: db.url, templates: [TEMPLATES_DIR], logger: recordingLogger() });
  try {
    const created: string[] = [];
    let refused: unknown;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        created.push((await client.createTask("tstests", "single", {})).task_uuid);
      } catch (e) {
        refused = e;
        break;
      }
      await sleep(5);
    }
    assert.ok(refused instanceof Overloaded, String(refused));
    assert.equal(refused.code, "overloaded");
    assert.equal(refused.retryable, true);
    assert.equal(refused.retryAfter, 5);
    assert.match(refused.message, /tstests/);
    assert.ok(created.length > 0, "the first task is accepted");
    for (const uuid of created) assert.equal((await client.getTask(uuid)).state, "steps_in_process");
  } finally {
    await client.close();
    db.cleanup();
    delete process.env.TASKER_BACKPRESSURE_MAX_READY_STEPS;
    delete process.env.TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS;
  }
});

test("other errors are not retryable", () => {
  const e = new TaskNotFound("x");
  assert.equal(e.retryable, false);
  assert.equal(e.retryAfter, undefined);
});
