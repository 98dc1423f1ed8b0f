/**
 * `Worker`: runs JavaScript handlers for the steps of some namespaces.
 *
 * One loop polls the bridge for as many events as there are free slots
 * (`concurrency` minus the steps in flight; the wait happens in Rust, the JS
 * thread stays free) and starts each event's handler at once. Results are
 * batched: every result settled while a `completeStepEvents` call is in flight
 * goes in the next call. A slot is busy from the poll that claimed the step until
 * its result has been sent, so the worker never holds more than `concurrency`
 * steps and never drops an event it polled.
 *
 * A handler that passes its step's deadline is failed as `timeout` (retryable);
 * `context.signal` is aborted so it can stop, its slot is freed, and whatever it
 * returns later is ignored (JavaScript cannot stop a running function).
 */

import { Bridge, type BridgeOptions } from "./bridge";
import { StepContext } from "./context";
import { ForkedProcess, fromNative, TaskerError, WorkerClosed } from "./errors";
import { forwardLogRecords, installLogForwarding, levelEnabled, type Logger, type LogLevel } from "./logging";
import type { DrainReport, StepEvent, WorkerStatus } from "./messages";
import { HandlerRegistry, type HandlersArg, type Resolved } from "./registry";
import { encodeResult, failureFromError, isStepResult, StepResult } from "./result";

/** Options of a `Worker`. */
export interface WorkerOptions extends Omit<BridgeOptions, "namespaces" | "concurrency"> {
  /** Namespaces whose steps this worker runs. */
  namespaces: string[];
  /** The handlers: a list (classes with `handlerName`, `defineHandler` results) or a record by callable. */
  handlers?: HandlersArg;
  /** Most handlers running at once (default 8). */
  concurrency?: number;
  /** Longest single wait of a poll, in ms (default 200, as in Python and Ruby; a stop interrupts it). */
  pollTimeoutMs?: number;
  /** How long a stop waits for running handlers before handing their steps back, in ms (default 30000). */
  shutdownGraceMs?: number;
  /** Where the worker's and the core's logs go (default `console`). */
  logger?: Logger;
  /** The worker's messages and the core's log records at this level and above are written (default `warn`). */
  logLevel?: LogLevel;
  /** Stop on SIGTERM/SIGINT while `run()` runs (default true). */
  handleSignals?: boolean;
  /** An open bridge to use instead of opening one (its namespaces and concurrency must match; stopping the worker shuts it down). */
  bridge?: Bridge;
}

/** One claimed step, from its poll until its result has been sent. */
class InFlight {
  readonly started = performance.now();
  context: StepContext | undefined;
  timer: NodeJS.Timeout | undefined;
  settled = false;
  private controller: AbortController | undefined;
  private aborted: { reason: unknown } | undefined;

  constructor(readonly eventId: string) {}

  /** The step's signal, made on first use (already aborted when asked for late). */
  readonly signal = (): AbortSignal => {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted !== undefined) this.controller.abort(this.aborted.reason);
    }
    return this.controller.signal;
  };

  /** Aborts the signal (now, or when it is made). */
  abort(reason: unknown): void {
    this.aborted ??= { reason };
    this.controller?.abort(reason);
  }
}

const LOG_INTERVAL_MS = 250;
const CLOSED_STATES = new Set(["worker_closed", "forked"]);

function isClosedError(e: unknown): boolean {
  return e instanceof TaskerError && CLOSED_STATES.has(e.code);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs JavaScript handlers for the steps of `namespaces`. */
export class Worker {
  /** Most handlers running at once. */
  readonly concurrency: number;
  /** Namespaces served. */
  readonly namespaces: readonly string[];
  /** The handlers. */
  readonly registry: HandlerRegistry;
  /** Where logs go. */
  readonly logger: Logger;
  /** The drain report, once stopped. */
  drainReport: DrainReport | undefined;

  private readonly options: WorkerOptions;
  private readonly pollTimeoutMs: number;
  private readonly shutdownGraceMs: number;
  private readonly logLevel: LogLevel;
  private bridgeValue: Bridge | undefined;
  private opening: Promise<Bridge> | undefined;
  private readonly inflight = new Map<string, InFlight>();
  private outbox: { item: InFlight; text: string }[] = [];
  private sending = false;
  private flushQueued = false;
  private slotWaiter: (() => void) | undefined;
  private stopRequested = false;
  private stopPolling = false;
  private stopWaiter: (() => void) | undefined;
  private readonly stopSignal: Promise<void>;
  private pollLoop: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  private shutdownPromise: Promise<DrainReport> | undefined;
  private logTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: WorkerOptions) {
    if (options === null || typeof options !== "object") throw new TypeError("new Worker({ namespaces, handlers, ... })");
    const concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency must be a whole number >= 1");
    if (!Array.isArray(options.namespaces)) throw new TypeError("namespaces must be an array of namespace names");
    this.options = options;
    this.concurrency = concurrency;
    this.namespaces = [...options.namespaces];
    this.registry = HandlerRegistry.from(options.handlers);
    this.logger = options.logger ?? console;
    this.logLevel = options.logLevel ?? "warn";
    this.pollTimeoutMs = options.pollTimeoutMs ?? 200;
    this.shutdownGraceMs = options.shutdownGraceMs ?? 30000;
    this.bridgeValue = options.bridge;
    this.stopSignal = new Promise((resolve) => {
      this.stopWaiter = resolve;
    });
  }

  /** The bridge (after `start()`). */
  get bridge(): Bridge {
    if (this.bridgeValue === undefined) throw new Error("the worker has not started: await worker.start() first");
    return this.bridgeValue;
  }

  /** Steps claimed and not yet answered here. */
  get inFlight(): number {
    return this.inflight.size;
  }

  private async openBridge(): Promise<Bridge> {
    if (this.bridgeValue !== undefined) return this.bridgeValue;
    if (this.opening === undefined) {
      const { namespaces: _n, handlers: _h, concurrency: _c, pollTimeoutMs: _p, shutdownGraceMs: _s, logger: _l,
        logLevel: _ll, handleSignals: _hs, bridge: _b, ...bridgeOptions } = this.options;
      if (bridgeOptions.databaseUrl === undefined && !process.env.TASKER_DATABASE_URL) {
        bridgeOptions.databaseUrl = "sqlite://tasker.db";
      }
      this.opening = Bridge.open({ ...bridgeOptions, namespaces: [...this.namespaces], concurrency: this.concurrency });
    }
    this.bridgeValue = await this.opening;
    return this.bridgeValue;
  }

  /** Opens the bridge (when not given one) and starts polling; resolves once running. */
  start(): Promise<void> {
    if (this.startPromise === undefined) {
      this.startPromise = (async () => {
        installLogForwarding(this.logLevel);
        await this.openBridge();
        if (this.stopRequested) return;
        this.logTimer = setInterval(() => this.forwardLogs(), LOG_INTERVAL_MS);
        this.logTimer.unref();
        this.pollLoop = this.poll();
      })();
    }
    return this.startPromise;
  }

  /**
   * Runs until SIGTERM/SIGINT (unless `handleSignals: false`) or `stop()`, then
   * drains: polling stops, running handlers get up to `shutdownGraceMs` to
   * finish, the rest is handed back. Resolves with the drain report.
   */
  async run(): Promise<DrainReport> {
    const onSignal = (): void => {
      this.log("info", "tasker worker: signal received, draining");
      void this.stop();
    };
    const signals = this.options.handleSignals ?? true;
    if (signals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    try {
      await this.start();
      await this.stopSignal;
      return await this.shutdown();
    } finally {
      if (signals) {
        process.removeListener("SIGTERM", onSignal);
        process.removeListener("SIGINT", onSignal);
      }
    }
  }

  /** Asks the worker to stop and drains (see `run`); resolves with the drain report. Idempotent. */
  stop(): Promise<DrainReport> {
    this.stopRequested = true;
    this.stopWaiter?.();
    return this.shutdown();
  }

  /** The bridge's counters plus what runs in JavaScript now. */
  status(): WorkerStatus & { js_in_flight: number } {
    return { ...this.bridge.workerStatus(), js_in_flight: this.inflight.size };
  }

  /** Resolves once nothing is in flight (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private shutdown(): Promise<DrainReport> {
    if (this.shutdownPromise === undefined) this.shutdownPromise = this.drain();
    return this.shutdownPromise;
  }

  private async drain(): Promise<DrainReport> {
    this.stopRequested = true;
    this.stopPolling = true;
    this.wakePoller();
    let report: DrainReport = { drained: 0, released: 0 };
    try {
      if (this.startPromise !== undefined) await this.startPromise.catch(() => undefined);
      const bridge = this.bridgeValue ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
      if (bridge !== undefined) {
        try {
          // The bridge stops claiming and waits for the results of claimed steps
          // (they keep being sent meanwhile), then releases the rest.
          report = await bridge.shutdown(this.shutdownGraceMs);
        } catch (e) {
          if (!isClosedError(e)) throw e;
        }
      }
      if (this.pollLoop !== undefined) await this.pollLoop;
      // Whatever still runs was handed back by the drain: abort it, send nothing.
      for (const item of this.inflight.values()) {
        item.settled = true;
        if (item.timer !== undefined) clearTimeout(item.timer);
        item.abort(new WorkerClosed("the worker stopped; the step was handed back"));
      }
      this.inflight.clear();
      this.outbox = [];
      this.notifyIdle();
      this.drainReport = report;
      this.log("info", `tasker worker stopped: drained ${report.drained}, released ${report.released}`);
      return report;
    } finally {
      if (this.logTimer !== undefined) clearInterval(this.logTimer);
      this.forwardLogs();
    }
  }

  /** Logs through the injected logger; a throwing logger never breaks the worker. */
  private log(level: keyof Logger, message: string): void {
    if (!levelEnabled(level, this.logLevel)) return;
    try {
      this.logger[level](message);
    } catch {
      // Nothing sensible to do: the logger itself failed.
    }
  }

  private forwardLogs(): void {
    try {
      forwardLogRecords(this.logger, this.logLevel);
    } catch {
      // Never let log forwarding break the worker.
    }
  }

  // ---- polling and dispatch ----

  private wakePoller(): void {
    const w = this.slotWaiter;
    this.slotWaiter = undefined;
    w?.();
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => {
      this.slotWaiter = resolve;
    });
  }

  private async poll(): Promise<void> {
    const bridge = this.bridge;
    let backoff = 100;
    while (!this.stopPolling) {
      const free = this.concurrency - this.inflight.size;
      if (free <= 0) {
        await this.waitForSlot();
        continue;
      }
      let events: StepEvent[];
      try {
        events = await bridge.pollStepEvents(free, this.pollTimeoutMs);
        backoff = 100;
      } catch (e) {
        if (isClosedError(e) || e instanceof ForkedProcess) break;
        this.log("error", `tasker worker: polling failed (${String(e)}); retrying in ${backoff} ms`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      for (const event of events) this.dispatch(event);
    }
  }

  private dispatch(event: StepEvent): void {
    const item = new InFlight(String(event.event_id));
    this.inflight.set(item.eventId, item);
    let context: StepContext;
    let resolved: Resolved | StepResult;
    try {
      context = new StepContext(event, { actions: this.bridge, logger: this.logger, signal: item.signal });
      item.context = context;
      resolved = this.registry.resolve(context.handlerCallable, context.handlerMethod, context.config);
    } catch (e) {
      this.log("error", `tasker worker: cannot start step event ${item.eventId}: ${String(e)}`);
      this.settle(item, failureFromError(e));
      return;
    }
    if (resolved instanceof StepResult) {
      this.settle(item, resolved);
      return;
    }
    this.armDeadline(item, context);
    const plain = resolved.plainReturns;
    let value: unknown;
    try {
      value = resolved.fn(context);
    } catch (e) {
      this.settle(item, failureFromError(e));
      return;
    }
    if (value !== null && typeof value === "object" && typeof (value as PromiseLike<unknown>).then === "function") {
      (value as PromiseLike<unknown>).then(
        (v) => this.settle(item, plain && !isStepResult(v) ? StepResult.success(v) : v),
        (e) => this.settle(item, failureFromError(e)),
      );
    } else {
      this.settle(item, plain && !isStepResult(value) ? StepResult.success(value) : value);
    }
  }

  private armDeadline(item: InFlight, context: StepContext): void {
    if (!context.deadlineMs) return;
    const wait = Math.max(0, context.deadlineMs - Date.now());
    item.timer = setTimeout(() => this.onDeadline(item), Math.min(wait, 0x7fffffff));
  }

  private onDeadline(item: InFlight): void {
    item.timer = undefined;
    const context = item.context;
    if (item.settled || context === undefined) return;
    if (context.deadlineMs > Date.now()) {
      // extendLease moved it.
      this.armDeadline(item, context);
      return;
    }
    this.log("warn",
      `tasker worker: step ${context.stepName} (task ${context.taskUuid}) passed its deadline ` +
        `(timeout ${context.timeoutMs} ms); recorded as timeout`,
    );
    this.settle(
      item,
      StepResult.failure(`handler exceeded its timeout of ${context.timeoutMs} ms`, {
        errorType: "timeout",
        retryable: true,
      }),
    );
    item.abort(new Error(`step ${context.stepName} passed its deadline`));
  }

  // ---- results ----

  /** Records the one result of an event (the first of handler result and timeout). */
  private settle(item: InFlight, outcome: unknown): void {
    if (item.settled) return;
    item.settled = true;
    if (item.timer !== undefined) {
      clearTimeout(item.timer);
      item.timer = undefined;
    }
    const text = encodeResult(item.eventId, outcome, performance.now() - item.started);
    this.outbox.push({ item, text });
    if (!this.sending && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        void this.flush();
      });
    }
  }

  private async flush(): Promise<void> {
    if (this.sending || this.outbox.length === 0) return;
    const batch = this.outbox;
    this.outbox = [];
    this.sending = true;
    try {
      await this.send(batch);
    } finally {
      this.sending = false;
      for (const { item } of batch) {
        if (this.inflight.get(item.eventId) === item) this.inflight.delete(item.eventId);
      }
      this.wakePoller();
      this.notifyIdle();
      if (this.outbox.length > 0) void this.flush();
    }
  }

  private notifyIdle(): void {
    if (this.inflight.size !== 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async send(batch: { item: InFlight; text: string }[]): Promise<void> {
    const payload = "[" + batch.map((b) => b.text).join(",") + "]";
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        const report = await this.bridge.completeStepEventsJson(payload);
        for (const inv of report.invalid) {
          this.log("warn", `tasker worker: result of event ${inv.event_id} recorded as invalid_result: ${inv.message}`);
        }
        for (const rej of report.rejected) {
          // A result after the step's deadline, or after a drain released it: the core had decided.
          this.log("info", `tasker worker: result of event ${rej.event_id} not recorded: ${rej.reason}`);
        }
        return;
      } catch (raw) {
        const e = fromNative(raw);
        if (isClosedError(e)) {
          this.log("info", `tasker worker: ${batch.length} result(s) not sent, the bridge is closed; their steps were released`);
          return;
        }
        if (attempt >= 4) {
          this.log("error",
            `tasker worker: sending ${batch.length} result(s) failed (${String(e)}); ` +
              "their steps return to the queue when their leases expire",
          );
          return;
        }
        this.log("warn", `tasker worker: sending ${batch.length} result(s) failed (${String(e)}); retrying`);
        await sleep(delay);
        delay *= 3;
      }
    }
  }
}
