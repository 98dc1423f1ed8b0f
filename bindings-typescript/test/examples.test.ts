// Every example workflow of examples/*.yaml, run by TypeScript handlers (classes
// and functions) on SQLite and PostgreSQL, with the values core/src/examples
// documents.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { Engine, type HandlerLike } from "tasker-core";
import { BACKENDS, classHandlers, EXAMPLES_DIR, functionHandlers, recordingLogger, step } from "./support";

/** What each example ends with (from the comments of examples/*.yaml and core/src/examples). */
const EXPECTED: Record<string, { context: Record<string, number>; values: Record<string, number> }> = {
  linear: {
    context: { n: 6 },
    values: { step_1: 36, step_2: 1296, step_3: 1679616, step_4: 2821109907456 },
  },
  diamond: { context: { n: 3 }, values: { start: 9, left: 81, right: 81, end: 43046721 } },
  mixed_dag: { context: { n: 2 }, values: { a: 4, b: 16, c: 16, d: 32, e: 256, f: 288, g: 82944 } },
  retry: { context: { n: 4 }, values: { fetch: 16, finish: 256 } },
  tree: {
    context: { n: 2 },
    values: {
      root: 4,
      branch_a: 16,
      branch_b: 16,
      leaf_a1: 256,
      leaf_a2: 256,
      leaf_b1: 256,
      leaf_b2: 256,
      converge: 1024,
    },
  },
};

function exampleNames(): string[] {
  return fs
    .readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => {
      const m = /^name:\s*(\S+)/m.exec(fs.readFileSync(path.join(EXAMPLES_DIR, f), "utf8"));
      assert.ok(m, `${f} has no name`);
      return m[1];
    })
    .sort();
}

/** The decision and batch examples, run by dynamic.test.ts. */
const DYNAMIC_EXAMPLES = ["conditional_approval", "csv_batch"];

test("every example template has an expectation here (or in dynamic.test.ts)", () => {
  assert.deepEqual(exampleNames(), [...Object.keys(EXPECTED), ...DYNAMIC_EXAMPLES].sort());
});

const STYLES: { name: string; handlers: () => HandlerLike[] }[] = [
  { name: "class handlers", handlers: classHandlers },
  { name: "function handlers", handlers: functionHandlers },
];

for (const backend of BACKENDS) {
  describe(`examples on ${backend.name}`, () => {
    for (const style of STYLES) {
      test(`all examples with ${style.name}`, async () => {
        const db = backend.open();
        const logger = recordingLogger();
        const engine = new Engine({
          databaseUrl: db.url,
          templates: [EXAMPLES_DIR],
          handlers: style.handlers(),
          concurrency: 4,
          logger,
        });
        try {
          assert.deepEqual([...engine.namespaces], ["examples"]);
          for (const name of Object.keys(EXPECTED).sort()) {
            const { context, values } = EXPECTED[name];
            const task = await engine.run("examples", name, context, { timeoutMs: 30_000 });
            assert.equal(task.state, "complete", `${name}: ${JSON.stringify(task.steps.map((s) => [s.name, s.state, s.error]))}`);
            assert.equal(task.steps.length, Object.keys(values).length, name);
            for (const [stepName, value] of Object.entries(values)) {
              const s = step(task, stepName);
              assert.equal(s.state, "complete", `${name}/${stepName}`);
              assert.deepEqual(s.result, { value }, `${name}/${stepName}`);
            }
            if (name === "retry") {
              const fetch = step(task, "fetch");
              assert.equal(fetch.attempts, 3, "flaky_square succeeds on its third attempt");
            }
          }
        } finally {
          await engine.close();
          db.cleanup();
        }
        assert.deepEqual(
          logger.lines.filter((l) => l.level === "error"),
          [],
          "no errors were logged",
        );
      });
    }
  });
}
