// The golden files of proto-contract/golden, walked from manifest.json (never a
// hand-kept list): valid step events build contexts; valid step results go through
// the result encoder unchanged and are accepted by the Bridge; invalid ones are
// recorded as invalid_result (or rejected when they name no usable event); task
// requests are accepted or refused by createTask.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import {
  Bridge,
  encodeResult,
  InvalidInput,
  StepContext,
  StepResult,
  TemplateNotFound,
  type StepEvent,
  type TaskRequest,
} from "tasker-core";
import { GOLDEN_DIR, sqliteDatabase, TEMPLATES_DIR } from "./support";

interface Entry {
  file: string;
  schema: string;
  valid: boolean;
  reason: string;
  fails?: string;
}

const manifest: Entry[] = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, "manifest.json"), "utf8"));
const text = (e: Entry): string => fs.readFileSync(path.join(GOLDEN_DIR, e.file), "utf8");
const load = (e: Entry): any => JSON.parse(text(e)); // eslint-disable-line @typescript-eslint/no-explicit-any
const entries = (schema: string, valid: boolean): Entry[] => manifest.filter((e) => e.schema === schema && e.valid === valid);

/** Messages this binding only receives as views or never handles; skipped by schema, explicitly. */
const SKIPPED_SCHEMAS: Record<string, string> = {
  completion_report: "decoded by JSON.parse only; its fields are exercised by the Bridge tests",
  task_view: "decoded by JSON.parse only; views are read by the example and failure tests",
  domain_event: "decoded by JSON.parse only; publishing is exercised by the Worker tests",
  publish_domain_event: "the Bridge takes name, payload and mode as arguments, not this message",
  stored_domain_event: "decoded by JSON.parse only; events.test.ts checks what EventSubscriber.poll returns against these files",
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

test("the manifest covers every golden file, and each schema is handled or skipped explicitly", () => {
  const listed = new Set(manifest.map((e) => e.file));
  const onDisk: string[] = [];
  const walk = (dir: string): void => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, d.name);
      if (d.isDirectory()) walk(full);
      else if (d.name.endsWith(".json") && full !== path.join(GOLDEN_DIR, "manifest.json")) {
        onDisk.push(path.relative(GOLDEN_DIR, full).split(path.sep).join("/"));
      }
    }
  };
  walk(GOLDEN_DIR);
  assert.deepEqual([...listed].sort(), onDisk.sort());
  const handled = new Set(["step_event", "step_result", "task_request"]);
  for (const e of manifest) assert.ok(handled.has(e.schema) || e.schema in SKIPPED_SCHEMAS, `schema ${e.schema} is neither handled nor skipped`);
  assert.ok(entries("step_event", true).length > 0 && entries("step_result", true).length > 0 && entries("step_result", false).length > 0);
});

function walk(value: unknown): void {
  if (Array.isArray(value)) value.forEach(walk);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) walk(v);
}

describe("valid step events build a context", () => {
  for (const entry of entries("step_event", true)) {
    test(entry.file, () => {
      const raw = text(entry);
      const ev = JSON.parse(raw) as StepEvent;
      const ctx = new StepContext(ev);
      assert.equal(ctx.eventId, ev.event_id);
      assert.equal(ctx.taskUuid, ev.task_uuid);
      assert.equal(ctx.stepUuid, ev.step_uuid);
      assert.equal(ctx.correlationId, ev.correlation_id);
      assert.deepEqual([ctx.namespace, ctx.taskName, ctx.taskVersion], [ev.namespace, ev.task_name, ev.task_version]);
      assert.deepEqual([ctx.stepName, ctx.templateStepName, ctx.stepType], [ev.step_name, ev.template_step_name, ev.step_type]);
      assert.equal(ctx.handlerCallable, ev.handler.callable);
      assert.equal(ctx.handlerMethod, ev.handler.method);
      assert.deepEqual(ctx.config, ev.handler.initialization);
      assert.deepEqual(ctx.context, ev.context);
      assert.deepEqual(ctx.dependencyResults, ev.dependency_results);
      for (const [name, result] of Object.entries(ev.dependency_results)) assert.deepEqual(ctx.dependency(name), result);
      for (const [key, value] of Object.entries(ev.context as Record<string, unknown>)) assert.deepEqual(ctx.input(key), value);
      assert.deepEqual([ctx.attempt, ctx.maxAttempts, ctx.retryable], [ev.attempt, ev.max_attempts, ev.retryable]);
      assert.deepEqual([ctx.timeoutMs, ctx.deadlineMs], [ev.timeout_ms, ev.deadline_ms]);
      assert.equal(ctx.isRetry, ev.attempt > 1);
      assert.equal(ctx.isLastAttempt, ev.attempt >= ev.max_attempts);
      walk(ctx.context);
      // Strings survive exactly (the unicode file): re-encoding gives the same values.
      assert.deepEqual(JSON.parse(JSON.stringify(ctx.context)), JSON.parse(raw).context);
      assert.deepEqual(JSON.parse(JSON.stringify(ctx.dependencyResults)), JSON.parse(raw).dependency_results);
      if (ev.checkpoint === null) {
        assert.equal(ctx.checkpoint, null);
      } else {
        assert.deepEqual(ctx.checkpoint, {
          cursor: ev.checkpoint.cursor,
          data: ev.checkpoint.data,
          savedAtMs: ev.checkpoint.saved_at_ms,
        });
      }
    });
  }
});

describe("invalid step events", () => {
  for (const entry of entries("step_event", false)) {
    test(entry.file, () => {
      const ev = load(entry);
      if (!("event_id" in ev)) {
        assert.throws(() => new StepContext(ev), TypeError);
      } else {
        // The core never sends these; a context still builds from the known members.
        assert.equal(new StepContext(ev).eventId, ev.event_id);
      }
    });
  }
});

describe("valid step results round-trip through the encoder", () => {
  for (const entry of entries("step_result", true)) {
    test(entry.file, () => {
      const msg = load(entry);
      const encoded = JSON.parse(encodeResult(msg.event_id, StepResult.fromMessage(msg), msg.execution_time_ms));
      assert.deepEqual(encoded, { result: null, ...msg });
    });
  }
});

async function heldEvents(bridge: Bridge, n: number): Promise<StepEvent[]> {
  for (let i = 0; i < n; i++) await bridge.createTask("tstests", "golden", {});
  const events: StepEvent[] = [];
  const deadline = Date.now() + 30_000;
  while (events.length < n && Date.now() < deadline) events.push(...(await bridge.pollStepEvents(n - events.length, 500)));
  assert.equal(events.length, n);
  return events;
}

test("step results through the Bridge: valid ones accepted, invalid ones recorded as invalid_result or rejected", async () => {
  const valid = entries("step_result", true);
  const invalid = entries("step_result", false);
  const all = [...valid, ...invalid];
  const db = sqliteDatabase();
  const bridge = await Bridge.open({ databaseUrl: db.url, namespaces: ["tstests"], concurrency: all.length, templates: [TEMPLATES_DIR] });
  try {
    const events = await heldEvents(bridge, all.length);
    const sent: string[] = [];
    const expectations: { entry: Entry; ev: StepEvent; usable: boolean }[] = [];
    all.forEach((entry, i) => {
      const raw = text(entry);
      const msg = JSON.parse(raw);
      const usable = typeof msg === "object" && msg !== null && typeof msg.event_id === "string" && UUID.test(msg.event_id);
      // Replace the event id in the text itself, so the rest (137.0 included) is sent byte for byte.
      sent.push(usable ? raw.replace(msg.event_id, events[i].event_id) : raw);
      expectations.push({ entry, ev: events[i], usable });
    });
    const report = await bridge.completeStepEvents(sent);
    const invalidIds = new Set(report.invalid.map((i) => i.event_id));
    for (const { entry, ev, usable } of expectations) {
      if (entry.valid) assert.ok(!invalidIds.has(ev.event_id), `${entry.file} was refused`);
      else if (usable) assert.ok(invalidIds.has(ev.event_id), `${entry.file} was not recorded as invalid_result`);
    }
    const unusable = expectations.filter((x) => !x.usable);
    assert.equal(report.rejected.length, unusable.length);
    assert.equal(report.accepted, sent.length - report.rejected.length);

    for (const { entry, ev, usable } of expectations) {
      if (!usable) {
        // Its event was never answered: hand it back so the task is not left hanging.
        assert.equal(await bridge.releaseStepEvent(ev.event_id), true);
        continue;
      }
      const task = await bridge.waitForTask(ev.task_uuid, 10_000);
      const [s] = task.steps;
      const msg = load(entry);
      if (entry.valid && msg.success) {
        assert.equal(s.state, "complete", entry.file);
        assert.deepEqual(s.result, msg.result ?? null, entry.file);
      } else if (entry.valid) {
        assert.equal(s.error?.error_type, msg.error.error_type, entry.file);
      } else {
        assert.equal(s.state, "error", entry.file);
        assert.equal(s.error?.error_type, "invalid_result", entry.file);
        assert.equal(s.error?.retryable, false, entry.file);
      }
    }
  } finally {
    await bridge.shutdown(0);
    db.cleanup();
  }
});

describe("task requests", () => {
  for (const entry of [...entries("task_request", true), ...entries("task_request", false)]) {
    test(entry.file, async () => {
      const db = sqliteDatabase();
      const bridge = await Bridge.open({ databaseUrl: db.url });
      try {
        // Valid requests name templates this database does not have.
        await assert.rejects(bridge.submitTask(load(entry) as TaskRequest), entry.valid ? TemplateNotFound : InvalidInput);
      } finally {
        await bridge.shutdown(0);
        db.cleanup();
      }
    });
  }
});
