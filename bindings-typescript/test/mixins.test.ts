// The handler API without a database: results and their encoding, the failure
// helpers, the Api mixin against a local HTTP server (status rules, Retry-After,
// network errors, timeouts), Decision and Batchable result shapes, the registry.
// Plus the Api mixin end to end (a 429 with Retry-After, then a 200).

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  Api,
  ApiConnectionError,
  ApiResponse,
  ApiTimeoutError,
  Batchable,
  createBatches,
  createSteps,
  Decision,
  defineHandler,
  encodeResult,
  Engine,
  failure,
  failureFromError,
  HandlerRegistry,
  noBatches,
  noBranches,
  parseRetryAfter,
  PermanentError,
  RetryableError,
  StepContext,
  StepHandler,
  StepResult,
  success,
  type StepEvent,
} from "tasker-core";
import { GOLDEN_DIR, recordingLogger, sleep, sqliteDatabase, step, TEMPLATES_DIR } from "./support";

const golden = (file: string): { result: unknown } => JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, file), "utf8"));

describe("results", () => {
  test("failure() is retryable by default; retryAfter is seconds, dropped when permanent", () => {
    const f = failure("nope", { retryAfter: 1.25, code: "E7", metadata: { a: 1 } });
    assert.deepEqual(f.error, { message: "nope", errorType: "handler_error", retryable: true, retryAfterMs: 1250, code: "E7" });
    assert.deepEqual(f.metadata, { a: 1 });
    const p = failure("nope", { retryable: false, retryAfter: 3, errorType: "bad" });
    assert.equal(p.error?.retryAfterMs, undefined, "no retry hint on a permanent failure");
    assert.equal(failure("x", { retryAfter: 1.0001 }).error?.retryAfterMs, 1001, "rounded up");
    assert.throws(() => failure("x", { retryAfter: -1 }), RangeError);
    assert.throws(() => failure("x", { retryAfter: Number.NaN }), TypeError);
    assert.throws(() => new RetryableError("x", { retryAfter: Infinity }), RangeError);
  });

  test("encodeResult writes a step_result; unserialisable results become invalid_result", () => {
    const id = "019ac152-81b0-7007-8031-5eed00070007";
    assert.deepEqual(JSON.parse(encodeResult(id, success({ a: 1 }, { m: true }), 12.6)), {
      event_id: id,
      success: true,
      result: { a: 1 },
      metadata: { m: true },
      execution_time_ms: 13,
    });
    assert.deepEqual(JSON.parse(encodeResult(id, failure("m", { errorType: "t", retryAfter: 0.5 }))), {
      event_id: id,
      success: false,
      result: null,
      error: { message: "m", error_type: "t", retryable: true, retry_after_ms: 500 },
    });
    for (const bad of [success({ n: 1n }), success({ n: NaN }), success([Infinity]), failure("m", { metadata: { r: -Infinity } }), success((() => { const o: Record<string, unknown> = {}; o.o = o; return o; })()), { value: 1 }, undefined, 42]) {
      const msg = JSON.parse(encodeResult(id, bad, 5));
      assert.equal(msg.success, false);
      assert.equal(msg.error.error_type, "invalid_result");
      assert.equal(msg.error.retryable, false);
      assert.equal(msg.execution_time_ms, 5);
    }
    assert.match(JSON.parse(encodeResult(id, success({ ratio: NaN }))).error.message, /NaN \(key "ratio"\) is not a JSON number/);
    const throwing = success({ toJSON() { throw new Error("no json for you"); } });
    assert.match(JSON.parse(encodeResult(id, throwing)).error.message, /no json for you/);
  });

  test("failureFromError: class name, stack, PermanentError / RetryableError semantics", () => {
    class Throttled extends RetryableError {}
    const t = failureFromError(new Throttled("later", { retryAfter: 2, code: "SLOW" }));
    assert.deepEqual(
      { type: t.error?.errorType, retryable: t.error?.retryable, ms: t.error?.retryAfterMs, code: t.error?.code },
      { type: "Throttled", retryable: true, ms: 2000, code: "SLOW" },
    );
    const p = failureFromError(new PermanentError("never", { metadata: { x: 1 } }));
    assert.deepEqual([p.error?.errorType, p.error?.retryable], ["PermanentError", false]);
    assert.deepEqual(p.metadata, { x: 1 });
    const e = failureFromError(new RangeError("out"));
    assert.deepEqual([e.error?.errorType, e.error?.retryable, e.error?.message], ["RangeError", true, "out"]);
    assert.match(String(e.error?.backtrace), /RangeError: out/);
    const sys = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    assert.equal(failureFromError(sys).error?.code, "ECONNREFUSED");
  });
});

describe("Decision and Batchable", () => {
  class Plan extends Batchable(Decision(StepHandler)) {
    call(): StepResult {
      return this.createBatches(1000, 300);
    }
  }

  test("shapes equal the contract's golden files (and the Rust core's traits)", () => {
    const plan = new Plan();
    assert.ok(plan instanceof StepHandler);
    assert.deepEqual(plan.createBatches(1000, 300).result, golden("step_result/valid/batch_create_batches.json").result);
    assert.deepEqual(plan.noBatches().result, golden("step_result/valid/batch_no_batches.json").result);
    assert.deepEqual(plan.noBranches().result, golden("step_result/valid/decision_no_branches.json").result);
    assert.deepEqual(
      plan.createSteps("ship_express", ["notify_vip"]).result,
      golden("step_result/valid/decision_create_steps.json").result,
    );
    assert.deepEqual(createSteps("a").result, { decision_point_outcome: { type: "create_steps", step_names: ["a"] } });
    assert.deepEqual(noBranches().result, plan.noBranches().result);
    assert.deepEqual(noBatches().result, plan.noBatches().result);
  });

  test("createBatches covers every item once", () => {
    const ranges = (total: number, size: number) =>
      (createBatches(total, size).result as { batch_processing_outcome: { cursor_configs: { batch_id: string; start_cursor: number; end_cursor: number }[] } })
        .batch_processing_outcome.cursor_configs;
    assert.deepEqual(ranges(0, 10), []);
    assert.deepEqual(ranges(5, 0).map((c) => [c.start_cursor, c.end_cursor]), [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]);
    const many = ranges(2500, 2);
    assert.equal(many.length, 1250);
    assert.equal(many[999].batch_id, "1000");
    assert.equal(many.at(-1)?.end_cursor, 2500);
    assert.throws(() => createBatches(-1, 10), RangeError);
    assert.throws(() => createBatches(1.5, 10), RangeError);
  });
});

describe("the registry", () => {
  test("names, records and lists", () => {
    class Named extends StepHandler {
      static override handlerName = "named";
      call() {
        return this.success(1);
      }
    }
    class Unnamed extends StepHandler {
      call() {
        return this.success(2);
      }
    }
    const fn = defineHandler("fn", () => 3);
    const reg = new HandlerRegistry([Named, Unnamed, fn]);
    assert.deepEqual(reg.names(), ["Unnamed", "fn", "named"]);
    const rec = new HandlerRegistry({ a: Named, b: fn, c: (ctx: StepContext) => ctx.stepName, d: { call: () => success(4) } });
    assert.deepEqual(rec.names(), ["a", "b", "c", "d"]);
    assert.throws(() => new HandlerRegistry([(() => 1) as never]), TypeError, "an anonymous arrow has no name");
    assert.throws(() => reg.register("", Named), TypeError);
    assert.throws(() => reg.register("x", 42 as never), TypeError);
    const missing = reg.resolve("nope", "call", {});
    assert.ok(missing instanceof StepResult && missing.error?.errorType === "handler_not_found");
    for (const method of ["success", "failure", "constructor", "_private", "toString", "hasOwnProperty", "nope"]) {
      const r = reg.resolve("named", method, {});
      assert.ok(r instanceof StepResult && r.error?.errorType === "unknown_method", method);
    }
  });
});

// ---- the Api mixin against a local server ----

let server: http.Server;
let base = "";
const hits: Record<string, number[]> = {};

before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    (hits[url.pathname] ??= []).push(Date.now());
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(payload));
      };
      switch (url.pathname) {
        case "/echo":
          return send(200, { method: req.method, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
        case "/status":
          return send(Number(url.searchParams.get("code")), { error: "as asked" }, url.searchParams.has("retry_after") ? { "retry-after": String(url.searchParams.get("retry_after")) } : {});
        case "/hang":
          return; // never answers
        case "/throttled": {
          const n = hits["/throttled"].length;
          return n === 1 ? send(429, { error: "slow down" }, { "retry-after": "1" }) : send(200, { fetched: n });
        }
        default:
          return send(404, { error: "no route" });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

class Fetch extends Api(StepHandler) {
  override timeoutMs = 2000;
  override defaultHeaders = { "x-client": "tasker-tests" };
  async call(): Promise<StepResult> {
    return this.success(null);
  }
}

describe("the Api mixin", () => {
  test("requests: base URL, params, JSON bodies, default headers", async () => {
    const api = new Fetch();
    api.baseUrl = base + "/";
    const r = await api.post("/echo", { params: { a: 1, b: ["x", "y"] }, json: { hello: "world" }, headers: { "x-extra": "1" } });
    assert.ok(r instanceof ApiResponse && r.ok && r.status === 200);
    const echo = r.json<{ method: string; query: Record<string, string>; headers: Record<string, string>; body: string }>();
    assert.equal(echo.method, "POST");
    assert.deepEqual(echo.query, { a: "1", b: "y" });
    assert.equal(echo.headers["content-type"], "application/json");
    assert.equal(echo.headers["x-client"], "tasker-tests");
    assert.equal(echo.headers["x-extra"], "1");
    assert.deepEqual(JSON.parse(echo.body), { hello: "world" });
    assert.deepEqual(api.apiSuccess(r, { picked: 1 }).result, { picked: 1 });
    assert.equal(api.apiSuccess(r).metadata.http_status, 200);
  });

  test("status rules: 408, 429 and 5xx retryable; other 4xx permanent; errorType http_<status>", async () => {
    const api = new Fetch();
    api.baseUrl = base;
    for (const [code, retryable] of [[400, false], [401, false], [404, false], [422, false], [408, true], [429, true], [500, true], [503, true]] as const) {
      const r = await api.get("/status", { params: { code } });
      assert.equal(r.status, code);
      assert.equal(r.isRetryable, retryable, String(code));
      const f = api.apiFailure(r);
      assert.equal(f.success, false);
      assert.equal(f.error?.errorType, `http_${code}`);
      assert.equal(f.error?.retryable, retryable, String(code));
      assert.equal(f.metadata.http_status, code);
    }
  });

  test("Retry-After in seconds or as an HTTP date is honoured on retryable failures only", async () => {
    const api = new Fetch();
    api.baseUrl = base;
    const busy = api.apiFailure(await api.get("/status", { params: { code: 503, retry_after: 2 } }));
    assert.equal(busy.error?.retryAfterMs, 2000);
    const date = new Date(Date.now() + 30_000).toUTCString();
    const dated = api.apiFailure(await api.get("/status", { params: { code: 429, retry_after: date } }));
    const ms = dated.error?.retryAfterMs ?? 0;
    assert.ok(ms >= 25_000 && ms <= 31_000, `retry after ${ms} ms`);
    const bad = api.apiFailure(await api.get("/status", { params: { code: 400, retry_after: 5 } }));
    assert.equal(bad.error?.retryAfterMs, undefined, "a permanent failure carries no hint");
    assert.equal(parseRetryAfter("120"), 120);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter("soon"), null);
    const now = Date.now();
    assert.equal(parseRetryAfter(new Date(now - 10_000).toUTCString(), now), 0);
  });

  test("network errors and timeouts are retryable", async () => {
    const api = new Fetch();
    // A port nobody listens on: open a server, note its port, close it.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = await api.get(`http://127.0.0.1:${port}/x`).then(() => null, (e: unknown) => e);
    assert.ok(refused instanceof ApiConnectionError && refused instanceof RetryableError, String(refused));
    assert.deepEqual([failureFromError(refused).error?.errorType, failureFromError(refused).error?.retryable], ["ApiConnectionError", true]);
    assert.deepEqual([api.apiFailure(refused).error?.errorType, api.apiFailure(refused).error?.retryable], ["http_connection_error", true]);

    const started = Date.now();
    const slow = await api.get(base + "/hang", { timeoutMs: 150 }).then(() => null, (e: unknown) => e);
    assert.ok(slow instanceof ApiTimeoutError, String(slow));
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual([api.apiFailure(slow).error?.errorType, api.apiFailure(slow).error?.retryable], ["http_timeout", true]);
  });

  test("end to end: a 429 with Retry-After is retried no sooner than asked", async () => {
    class FetchApi extends Api(StepHandler) {
      static override handlerName = "fetch_api";
      override baseUrl = base;
      async call(context: StepContext): Promise<StepResult> {
        const r = await this.get("/throttled", { signal: context.signal });
        return r.ok ? this.apiSuccess(r) : this.apiFailure(r);
      }
    }
    const db = sqliteDatabase();
    const engine = new Engine({ databaseUrl: db.url, templates: [TEMPLATES_DIR], handlers: [FetchApi], logger: recordingLogger() });
    try {
      const created = await engine.createTask("tstests", "api_retry_after", {});
      let recorded: { error_type?: string; retry_after_ms?: number } | undefined;
      for (let i = 0; i < 200 && recorded === undefined; i++) {
        const s = step(await engine.getTask(created.task_uuid), "fetch");
        if (s.state === "waiting_for_retry") recorded = s.error ?? undefined;
        else await sleep(10);
      }
      assert.deepEqual([recorded?.error_type, recorded?.retry_after_ms], ["http_429", 1000]);
      const task = await engine.waitForTask(created.task_uuid, 30_000);
      assert.equal(task.state, "complete");
      assert.deepEqual(step(task, "fetch").result, { fetched: 2 });
      const [first, second] = hits["/throttled"];
      assert.ok(second - first >= 1000 - 5, `retried after ${second - first} ms`);
    } finally {
      await engine.close();
      db.cleanup();
    }
  });
});

test("a context outside a worker refuses to act", async () => {
  const ev = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, "step_event/valid/retried_batch_worker.json"), "utf8")) as StepEvent;
  const ctx = new StepContext({ ...ev, handler: { ...ev.handler, initialization: { start_cursor: 300, end_cursor: 600 } } });
  assert.deepEqual(ctx.cursorRange(), [300, 600], "resumes at the checkpoint's cursor");
  await assert.rejects(ctx.saveCheckpoint(1), /not attached to a worker/);
  assert.throws(() => ctx.publish("x", {}), /not attached to a worker/);
  assert.equal(ctx.logger.fields.correlation_id, ev.correlation_id);
  assert.equal(new StepContext({ ...ev, handler: { ...ev.handler, initialization: 5 } }).config.value, 5);
});
