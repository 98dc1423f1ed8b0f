/**
 * The TypeScript binding's benchmark (compiled with `npm run build:bench`, run
 * with `node dist-bench/bench.js [--quick]`). Prints:
 *
 * - `ts_us_per_step_batch1=` / `ts_us_per_step_batch64=`: poll + complete round
 *   trips on a loopback bridge (synthetic events, no database work), including
 *   the JSON work and building each result the way the Worker does (a
 *   StepContext per event, the handler's StepResult, encodeResult, one batch).
 *   Compare with `tasker-bench --bridge` (the same loop in Rust).
 * - `ts_throughput_share_of_rust=`: one-step tasks on SQLite, created beforehand
 *   through a client-only bridge, then run by the core's Rust `noop` handler
 *   (`builtinHandlers: true`) and, on a second database, by a TypeScript Worker
 *   with a trivial handler; the ratio of their steps per second.
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Bridge, defineHandler, encodeResult, silentLogger, StepContext, StepResult, Worker, type StepEvent } from "../dist/index";

const quick = process.argv.includes("--quick");
const TEMPLATES = path.join(__dirname, "..", "bench", "templates");

function handler(_context: StepContext): StepResult {
  return StepResult.success({ value: 1 });
}

/** Polls up to `batch` events, runs them as the Worker does, completes them as one batch. */
async function roundTrips(bridge: Bridge, batch: number, steps: number): Promise<number> {
  let done = 0;
  while (done < steps) {
    const events: StepEvent[] = await bridge.pollStepEvents(batch, 1000);
    const texts = new Array<string>(events.length);
    for (let i = 0; i < events.length; i++) {
      const started = performance.now();
      const context = new StepContext(events[i]);
      const outcome = handler(context);
      texts[i] = encodeResult(context.eventId, outcome, performance.now() - started);
    }
    done += texts.length;
    await bridge.completeStepEventsJson("[" + texts.join(",") + "]");
  }
  return done;
}

async function loopback(): Promise<void> {
  const steps = quick ? 2_000 : 100_000;
  for (const batch of [1, 64]) {
    const bridge = await Bridge.loopback(batch);
    await roundTrips(bridge, batch, Math.max(100, steps / 10)); // warm up
    const started = performance.now();
    const done = await roundTrips(bridge, batch, steps);
    const us = ((performance.now() - started) * 1000) / done;
    console.log(`ts_us_per_step_batch${batch}=${us.toFixed(2)}`);
    await bridge.shutdown(0);
  }
}

async function createTasks(url: string, n: number): Promise<void> {
  const client = await Bridge.open({ databaseUrl: url, templates: [TEMPLATES] });
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    pending.push(client.createTask("tsbench", "one_step", {}));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await client.shutdown(0);
}

async function untilSucceeded(bridge: Bridge, n: number, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (bridge.workerStatus().succeeded < n) {
    if (performance.now() > deadline) {
      throw new Error(`only ${bridge.workerStatus().succeeded} of ${n} steps ran in ${limitMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function throughput(): Promise<void> {
  const n = quick ? 300 : 5_000;
  const concurrency = 32;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-ts-bench-"));
  try {
    // The two sides alternate and each keeps its best run, so one slow moment of
    // a small VM does not decide the comparison (as in the Python and Ruby benches).
    let rustRate = 0;
    let tsRate = 0;
    for (let run = 0; run < (quick ? 1 : 3); run++) {
    const rustUrl = `sqlite://${path.join(dir, `rust-${run}.db`)}`;
    const tsUrl = `sqlite://${path.join(dir, `ts-${run}.db`)}`;
    await createTasks(rustUrl, n);
    await createTasks(tsUrl, n);

    let started = performance.now();
    const rust = await Bridge.open({ databaseUrl: rustUrl, namespaces: ["tsbench"], builtinHandlers: true, concurrency });
    await untilSucceeded(rust, n, 600_000);
    const rustSeconds = (performance.now() - started) / 1000;
    await rust.shutdown(0);

    started = performance.now();
    const noop = defineHandler("noop", () => ({}));
    const worker = new Worker({
      databaseUrl: tsUrl,
      namespaces: ["tsbench"],
      handlers: [noop],
      concurrency,
      handleSignals: false,
      logger: silentLogger,
    });
    await worker.start();
    await untilSucceeded(worker.bridge, n, 600_000);
    const tsSeconds = (performance.now() - started) / 1000;
    await worker.stop();

    rustRate = Math.max(rustRate, n / rustSeconds);
    tsRate = Math.max(tsRate, n / tsSeconds);
    }
    console.log(`ts_throughput_rust_steps_per_s=${rustRate.toFixed(0)}`);
    console.log(`ts_throughput_ts_steps_per_s=${tsRate.toFixed(0)}`);
    console.log(`ts_throughput_share_of_rust=${(tsRate / rustRate).toFixed(3)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await loopback();
  await throughput();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
