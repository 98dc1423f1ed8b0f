// The installed package: where it loads from, both module systems, its exports,
// its declared metadata, and errors crossing the boundary (codes, panics).

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as tasker from "tasker-core";
import {
  Bridge,
  ERROR_CODES,
  errorClassFor,
  fromNative,
  InternalError,
  InvalidConfig,
  InvalidInput,
  TaskerError,
  TaskNotFound,
  TemplateNotFound,
  WaitTimedOut,
  WorkerClosed,
} from "tasker-core";
import { sqliteDatabase, TEMPLATES_DIR } from "./support";

test("tasker-core resolves from the test folder's node_modules, not the source tree", () => {
  const resolved = fs.realpathSync(require.resolve("tasker-core"));
  const expected = process.env.TASKER_EXPECTED_PACKAGE_DIR ?? path.join(process.cwd(), "node_modules", "tasker-core");
  assert.ok(
    resolved.startsWith(fs.realpathSync(expected) + path.sep),
    `tasker-core resolved to ${resolved}, expected under ${expected}`,
  );
  assert.ok(!resolved.includes(`${path.sep}bindings-typescript${path.sep}dist${path.sep}`));
  const addon = fs.realpathSync(tasker.addonPath());
  assert.ok(addon.startsWith(fs.realpathSync(expected) + path.sep), `addon loaded from ${addon}`);
  assert.match(path.basename(addon), /^tasker_node\..+\.node$/);
});

test("require() loads the CommonJS entry", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const viaRequire = require("tasker-core") as typeof tasker;
  assert.equal(typeof viaRequire.Bridge, "function");
  assert.equal(viaRequire.Bridge, Bridge);
  assert.equal(viaRequire.nativeVersion(), "0.1.0");
  assert.equal(viaRequire.runtimePid(), process.pid);
});

test("import() loads the ES module entry, sharing the classes of require()", async () => {
  const viaImport = (await import("tasker-core")) as typeof tasker & { default: typeof tasker };
  assert.equal(viaImport.Bridge, Bridge, "one copy of the package per process");
  assert.equal(viaImport.default.StepHandler, tasker.StepHandler);
  // Every runtime export of the CommonJS entry is a named export of the ES module.
  const cjsNames = Object.keys(tasker).filter((k) => k !== "default").sort();
  const esmNames = Object.keys(viaImport).filter((k) => k !== "default").sort();
  assert.deepEqual(esmNames, cjsNames);
});

test("the package declares no runtime dependencies and ships types", () => {
  const dir = path.dirname(require.resolve("tasker-core/package.json"));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  assert.equal(pkg.name, "tasker-core");
  for (const k of ["dependencies", "optionalDependencies", "peerDependencies"]) {
    assert.ok(!pkg[k] || Object.keys(pkg[k]).length === 0, `${k} must be empty`);
  }
  assert.ok(fs.existsSync(path.join(dir, "dist", "index.d.ts")));
  assert.ok(fs.existsSync(path.join(dir, "esm", "index.d.mts")));
  assert.ok(fs.existsSync(path.join(dir, "README.md")));
});

test("every error code has its TaskerError subclass", () => {
  assert.deepEqual([...ERROR_CODES], JSON.parse(JSON.stringify(ERROR_CODES)));
  const names: Record<string, string> = {
    invalid_config: "InvalidConfig",
    invalid_input: "InvalidInput",
    worker_closed: "WorkerClosed",
    unknown_event: "UnknownEvent",
    task_not_found: "TaskNotFound",
    template_not_found: "TemplateNotFound",
    wait_timed_out: "WaitTimedOut",
    database: "DatabaseError",
    overloaded: "Overloaded",
    forked: "ForkedProcess",
    internal: "InternalError",
  };
  assert.deepEqual(Object.keys(names).sort(), [...ERROR_CODES].sort());
  for (const code of ERROR_CODES) {
    const Class = errorClassFor(code);
    const e = new Class("x");
    assert.ok(e instanceof TaskerError && e instanceof Error);
    assert.equal(e.code, code);
    assert.equal(e.name, names[code]);
    assert.equal(Class.name, names[code]);
    const mapped = fromNative(new Error(`[tasker:${code}] something`));
    assert.ok(mapped instanceof Class, code);
    assert.equal((mapped as TaskerError).message, "something");
  }
  const plain = new Error("not ours");
  assert.equal(fromNative(plain), plain);
});

test("a Rust panic becomes InternalError and the process survives", async () => {
  const { native } = require(path.join(path.dirname(require.resolve("tasker-core")), "native.js")) as {
    native: () => { panicForTest(m: string): void; panicForTestAsync(m: string): Promise<void> };
  };
  assert.throws(() => {
    try {
      native().panicForTest("boom on purpose");
    } catch (e) {
      throw fromNative(e);
    }
  }, (e: unknown) => e instanceof InternalError && e.code === "internal" && /boom on purpose/.test(e.message));
  await assert.rejects(
    native().panicForTestAsync("async boom").catch((e) => {
      throw fromNative(e);
    }),
    (e: unknown) => e instanceof InternalError && /async boom/.test((e as Error).message),
  );
});

test("bridge errors carry their codes", async () => {
  await assert.rejects(Bridge.open({ databaseUrl: "sqlite:///tmp/x.db", wakeupMode: "sometimes" as never }), InvalidConfig);
  await assert.rejects(
    Bridge.open({ databaseUrl: "sqlite:///tmp/x.db", noSuchOption: 1 } as never),
    (e: unknown) => e instanceof InvalidConfig && /no_such_option/.test((e as Error).message),
  );
  const db = sqliteDatabase();
  const bridge = await Bridge.open({ databaseUrl: db.url, templates: [TEMPLATES_DIR] });
  try {
    await assert.rejects(bridge.getTask("not-a-uuid"), InvalidInput);
    await assert.rejects(bridge.getTask("019ac152-7d00-7001-8007-5eed00010001"), TaskNotFound);
    await assert.rejects(bridge.createTask("tstests", "no_such_template", {}), TemplateNotFound);
    await assert.rejects(bridge.pollStepEvents(1, 10), (e: unknown) => e instanceof InvalidInput, "a client has no events");
    const task = await bridge.createTask("tstests", "slow", {});
    await assert.rejects(bridge.waitForTask(task.task_uuid, 50), WaitTimedOut);
    await assert.rejects(bridge.publishDomainEvent("x", {}, "sometimes" as never), InvalidInput);
    await assert.rejects(bridge.publishDomainEvent("", {}), InvalidInput);
  } finally {
    await bridge.shutdown(0);
    db.cleanup();
  }
  await assert.rejects(bridge.getTask("019ac152-7d00-7001-8007-5eed00010001"), WorkerClosed);
  await assert.rejects(bridge.publishDomainEvent("x", {}), WorkerClosed);
});
