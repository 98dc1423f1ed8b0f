// The ES module entry, as an ES module (compiled from .mts: a real `import`).

import assert from "node:assert/strict";
import { test } from "node:test";
import { createRequire } from "node:module";
import taskerDefault, { Bridge, StepHandler, TaskerError, defineHandler, success, type StepContext } from "tasker-core";

const require = createRequire(import.meta.url);

test("import { ... } from 'tasker-core' works in an ES module", () => {
  assert.equal(typeof Bridge.open, "function");
  assert.equal(taskerDefault.Bridge, Bridge);
  const cjs = require("tasker-core");
  assert.equal(cjs.StepHandler, StepHandler, "the ES entry re-exports the one CommonJS copy");
  assert.ok(new cjs.TaskerError("x") instanceof TaskerError);
  class Echo extends StepHandler {
    static override handlerName = "echo";
    call(context: StepContext) {
      return this.success({ step: context.stepName });
    }
  }
  assert.equal(Echo.handlerName, "echo");
  const fn = defineHandler("f", () => 1);
  assert.equal(fn.handlerName, "f");
  assert.equal(success(1).result, 1);
});
