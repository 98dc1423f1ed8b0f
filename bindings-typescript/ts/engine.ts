/**
 * `Engine` (orchestration and a JavaScript worker in this process) and `Client`
 * (create and read tasks that other processes run).
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { Bridge, type BridgeOptions, type CreateTaskOptions } from "./bridge";
import { installLogForwarding, forwardLogRecords, type Logger, type LogLevel } from "./logging";
import type { DrainReport, TaskView } from "./messages";
import type { HandlersArg } from "./registry";
import { Worker } from "./worker";

/** Task states in which a task has finished (what `waitForTask` waits for). */
export const FINISHED_STATES: ReadonlySet<string> = new Set([
  "complete",
  "error",
  "cancelled",
  "resolved_manually",
  "blocked_by_failures",
]);

/** Thrown by `engine.run(..., { check: true })` when the task did not complete. */
export class TaskFailed extends Error {
  /** The final task view. */
  readonly task: TaskView;

  constructor(task: TaskView) {
    const failed = (task.steps ?? []).filter((s) => s.error);
    const detail = failed.map((s) => `${s.name}: ${s.error?.message}`).join("; ");
    super(`task ${task.task_uuid} ended in ${task.state}${detail ? ` (${detail})` : ""}`);
    this.name = "TaskFailed";
    this.task = task;
  }
}

/** A `namespace:` key: the template's (top level) or a step's own, in block or flow style. */
const NAMESPACE_KEY = /(?:^|[{,])[ \t]*(?:-[ \t]+)?namespace:[ \t]*["']?([^"'\s#,}]+)/gm;

/**
 * Namespaces the templates' steps run in: each template's `namespace` and the
 * steps' own (`steps[].namespace`). A light scan of the `namespace:` keys; the core
 * parses the files properly.
 */
export function templateNamespaces(paths: readonly string[]): string[] {
  const found: string[] = [];
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry.name)) files.push(full);
    }
  };
  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch {
      continue;
    }
    if (stat.isDirectory()) walk(p);
    else if (stat.isFile()) files.push(p);
  }
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, "utf8");
    } catch {
      continue;
    }
    for (const m of text.matchAll(NAMESPACE_KEY)) if (!found.includes(m[1])) found.push(m[1]);
  }
  return found;
}

/** Options of `Client`. */
export interface ClientOptions extends Omit<BridgeOptions, "namespaces" | "concurrency" | "builtinHandlers"> {
  /** Where logs go (default `console`). */
  logger?: Logger;
  /** The worker's messages and the core's log records at this level and above are written (default `warn`). */
  logLevel?: LogLevel;
}

/** Options of `engine.run`. */
export interface RunOptions extends CreateTaskOptions {
  /** How long to wait for the task to finish, in ms (default 60000). */
  timeoutMs?: number;
  /** Throw `TaskFailed` unless the task completed. */
  check?: boolean;
}

/**
 * Creates and reads tasks; the steps run in workers elsewhere (other processes
 * sharing the database). Templates come from the database (registered by an
 * engine or `tasker orchestrator`) or from `templates`. Opens its connection on
 * first use; `close()` releases it.
 */
export class Client {
  private readonly options: ClientOptions;
  private opening: Promise<Bridge> | undefined;
  private readonly logger: Logger;
  private readonly logLevel: LogLevel;

  constructor(options: ClientOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? console;
    this.logLevel = options.logLevel ?? "warn";
  }

  /** The bridge, opened on first use. */
  bridge(): Promise<Bridge> {
    if (this.opening === undefined) {
      const { logger: _l, logLevel: _ll, ...bridgeOptions } = this.options;
      if (bridgeOptions.databaseUrl === undefined && !process.env.TASKER_DATABASE_URL) {
        throw new TypeError("pass databaseUrl (sqlite://PATH or postgres://...) or set TASKER_DATABASE_URL");
      }
      installLogForwarding(this.logLevel);
      this.opening = Bridge.open(bridgeOptions);
    }
    return this.opening;
  }

  private async call<T>(f: (b: Bridge) => Promise<T>): Promise<T> {
    try {
      return await f(await this.bridge());
    } finally {
      forwardLogRecords(this.logger, this.logLevel);
    }
  }

  /** Creates a task; returns its view (`task_uuid`, `state`, `steps` ...). */
  createTask(namespace: string, name: string, context: unknown = {}, options: CreateTaskOptions = {}): Promise<TaskView> {
    return this.call((b) => b.createTask(namespace, name, context, options));
  }

  /** The task view. */
  getTask(taskUuid: string): Promise<TaskView> {
    return this.call((b) => b.getTask(taskUuid));
  }

  /** Waits until the task is finished (`WaitTimedOut` after `timeoutMs`). */
  waitForTask(taskUuid: string, timeoutMs = 60000): Promise<TaskView> {
    return this.call((b) => b.waitForTask(taskUuid, timeoutMs));
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    if (this.opening === undefined) return;
    const bridge = await this.opening.catch(() => undefined);
    if (bridge !== undefined) await bridge.shutdown(0);
  }
}

/** Options of `Engine`. */
export interface EngineOptions extends Omit<BridgeOptions, "namespaces" | "concurrency"> {
  /** Default `sqlite://tasker.db` (or env `TASKER_DATABASE_URL`). */
  databaseUrl?: string;
  /** YAML template files or folders, registered in the database at start. */
  templates?: string[];
  /** The handlers (as for `Worker`). */
  handlers?: HandlersArg;
  /** Most handlers running at once (default 8). */
  concurrency?: number;
  /** Namespaces served by the worker (default: every namespace the templates declare, their steps' own included). */
  namespaces?: string[];
  /** Longest single wait of a poll, in ms (default 200). */
  pollTimeoutMs?: number;
  /** How long `close()` waits for running handlers, in ms (default 30000). */
  shutdownGraceMs?: number;
  /** Where logs go (default `console`). */
  logger?: Logger;
  /** The worker's messages and the core's log records at this level and above are written (default `warn`). */
  logLevel?: LogLevel;
}

/**
 * Orchestration plus a JavaScript worker in this process, on SQLite by default
 * (`sqlite://tasker.db`) or PostgreSQL. The engine starts on first use (or
 * `start()`); `close()` stops the worker (with a drain) and the engine. An
 * engine keeps Node running until it is closed.
 */
export class Engine {
  /** Namespaces the worker serves. */
  readonly namespaces: readonly string[];
  private readonly options: EngineOptions;
  private readonly logger: Logger;
  private readonly logLevel: LogLevel;
  private opening: Promise<Bridge> | undefined;
  private workerValue: Worker | undefined;
  private workerRun: Promise<DrainReport> | undefined;
  private closing: Promise<DrainReport> | undefined;

  constructor(options: EngineOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? console;
    this.logLevel = options.logLevel ?? "warn";
    const templates = (options.templates ?? []).map(String);
    this.namespaces = [...(options.namespaces ?? templateNamespaces(templates))];
  }

  /** The bridge, opened on first use. */
  bridge(): Promise<Bridge> {
    if (this.closing !== undefined) return Promise.reject(new Error("this engine is closed"));
    if (this.opening === undefined) {
      const { handlers: _h, namespaces: _n, pollTimeoutMs: _p, shutdownGraceMs: _s, logger: _l, logLevel: _ll,
        concurrency, ...bridgeOptions } = this.options;
      const databaseUrl = bridgeOptions.databaseUrl ?? process.env.TASKER_DATABASE_URL ?? "sqlite://tasker.db";
      installLogForwarding(this.logLevel);
      this.opening = Bridge.open({
        ...bridgeOptions,
        databaseUrl,
        templates: (bridgeOptions.templates ?? []).map(String),
        namespaces: [...this.namespaces],
        concurrency: concurrency ?? 8,
      });
    }
    return this.opening;
  }

  /** The worker (after `start()`); undefined when there is no namespace to serve. */
  get worker(): Worker | undefined {
    return this.workerValue;
  }

  /** Opens the engine and starts the worker (no worker when there is nothing to serve). */
  async start(): Promise<this> {
    const bridge = await this.bridge();
    if (this.namespaces.length > 0 && this.workerValue === undefined) {
      this.workerValue = new Worker({
        namespaces: [...this.namespaces],
        handlers: this.options.handlers,
        concurrency: this.options.concurrency ?? 8,
        pollTimeoutMs: this.options.pollTimeoutMs,
        shutdownGraceMs: this.options.shutdownGraceMs,
        logger: this.logger,
        logLevel: this.logLevel,
        handleSignals: false,
        bridge,
      });
      this.workerRun = this.workerValue.run();
      this.workerRun.catch((e) => this.logger.error(`tasker engine: the worker failed: ${String(e)}`));
      await this.workerValue.start();
    }
    return this;
  }

  /** Creates a task; returns its view. */
  async createTask(namespace: string, name: string, context: unknown = {}, options: CreateTaskOptions = {}): Promise<TaskView> {
    await this.start();
    return (await this.bridge()).createTask(namespace, name, context, options);
  }

  /** The task view. */
  async getTask(taskUuid: string): Promise<TaskView> {
    return (await this.bridge()).getTask(taskUuid);
  }

  /** Waits until the task is finished (`WaitTimedOut` after `timeoutMs`). */
  async waitForTask(taskUuid: string, timeoutMs = 60000): Promise<TaskView> {
    return (await this.bridge()).waitForTask(taskUuid, timeoutMs);
  }

  /**
   * Creates a task, waits until it has finished (at most `timeoutMs`, default
   * 60 s) and returns the final task view. With `check: true`, throws
   * `TaskFailed` unless it completed.
   */
  async run(namespace: string, name: string, context: unknown = {}, options: RunOptions = {}): Promise<TaskView> {
    const { timeoutMs = 60000, check = false, ...createOptions } = options;
    const deadline = Date.now() + timeoutMs;
    let task = await this.createTask(namespace, name, context, createOptions);
    if (!FINISHED_STATES.has(task.state)) {
      task = await this.waitForTask(task.task_uuid, Math.max(1, deadline - Date.now()));
    }
    if (check && task.state !== "complete") throw new TaskFailed(task);
    return task;
  }

  /**
   * Stops the worker (running handlers finish within the grace period, the rest
   * is handed back) and closes the engine. Returns the drain report. Idempotent.
   */
  close(): Promise<DrainReport> {
    if (this.closing === undefined) {
      this.closing = (async () => {
        if (this.opening === undefined) return { drained: 0, released: 0 };
        if (this.workerValue !== undefined) return this.workerValue.stop();
        const bridge = await this.opening.catch(() => undefined);
        const report = bridge === undefined ? { drained: 0, released: 0 } : await bridge.shutdown(0);
        forwardLogRecords(this.logger, this.logLevel);
        return report;
      })();
    }
    return this.closing;
  }

  /** Same as `close()`. */
  stop(): Promise<DrainReport> {
    return this.close();
  }
}
