/** What a handler sees: `StepContext`, built from one `step_event`. */

import type { DomainEvent, DomainEventMode, StepEvent } from "./messages";
import { silentLogger, withFields, type Logger, type StepLogger } from "./logging";

/** The calls a context makes on behalf of its step (a `Bridge` provides them). */
export interface StepActions {
  checkpointStep(eventId: string, cursor: unknown, data: unknown): Promise<void>;
  extendLease(eventId: string): Promise<number>;
  publishDomainEvent(name: string, payload: unknown, mode: DomainEventMode, eventId?: string): Promise<DomainEvent>;
}

/** A checkpoint saved by an earlier attempt of a batch worker (or by this one). */
export interface Checkpoint {
  /** Where the worker got to. */
  cursor: unknown;
  /** What it wants to carry over. */
  data: unknown;
  /** When it was saved (epoch ms). */
  savedAtMs: number;
}

/** Options of a context (the Worker passes them). */
export interface StepContextOptions {
  /** Where `saveCheckpoint`, `extendLease` and `publish` go. */
  actions?: StepActions;
  /** The logger `context.logger` writes to (with the step's fields added). */
  logger?: Logger;
  /**
   * Aborted when the attempt's deadline passes or the worker stops; a function
   * is called on first use of `context.signal` (signals cost a few microseconds
   * to make, and most handlers never look).
   */
  signal?: AbortSignal | (() => AbortSignal);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * One attempt of one step, as its handler sees it. `context` is the task's
 * input, `dependencyResults` the parents' results by step name, `config` the
 * template's `handler.initialization`.
 */
export class StepContext {
  /** Identifies this hand-out of the step. */
  readonly eventId: string;
  /** The task. */
  readonly taskUuid: string;
  /** The step. */
  readonly stepUuid: string;
  /** Correlation id of the task: put it in every log line (`logger` does). */
  readonly correlationId: string;
  /** Namespace of the task's template. */
  readonly namespace: string;
  /** Template name. */
  readonly taskName: string;
  /** Template version. */
  readonly taskVersion: string;
  /** Step name. */
  readonly stepName: string;
  /** The template step it was made from (equals `stepName` for declared steps). */
  readonly templateStepName: string;
  /** `standard`, `decision`, `deferred_convergence`, `batchable` or `batch_worker`. */
  readonly stepType: string;
  /** The handler's registry key. */
  readonly handlerCallable: string;
  /** The entry point (default `call`). */
  readonly handlerMethod: string;
  /** The template's `handler.initialization` (an object; a scalar is wrapped as `{value}`). */
  readonly config: Record<string, unknown>;
  /** The task's context (its input). */
  readonly context: Record<string, unknown>;
  /** Results of the parent steps, by step name. */
  readonly dependencyResults: Record<string, unknown>;
  /** This attempt's number (1 for the first). */
  readonly attempt: number;
  /** Attempts allowed, counting the first. */
  readonly maxAttempts: number;
  /** Whether a failed attempt may be retried at all (the template's `retry.retryable`). */
  readonly retryable: boolean;
  /** Time allowed for this attempt, in ms. */
  readonly timeoutMs: number;
  /** When this attempt times out (epoch ms); `extendLease()` moves it. */
  deadlineMs: number;
  /** The last checkpoint (saved by an earlier attempt, or by `saveCheckpoint`), or null. */
  checkpoint: Checkpoint | null;
  /** The step event this context was built from. */
  readonly event: StepEvent;

  private readonly actions: StepActions | undefined;
  private readonly baseLogger: Logger | undefined;
  private signalSource: AbortSignal | (() => AbortSignal) | undefined;
  private stepLogger: StepLogger | undefined;

  constructor(event: StepEvent, options: StepContextOptions = {}) {
    if (!isObject(event)) throw new TypeError("a step event must be an object");
    if (typeof event.event_id !== "string") throw new TypeError("a step event needs an event_id");
    const handler = isObject(event.handler) ? event.handler : ({} as Record<string, unknown>);
    this.event = event;
    this.eventId = event.event_id;
    this.taskUuid = String(event.task_uuid);
    this.stepUuid = String(event.step_uuid);
    this.correlationId = String(event.correlation_id);
    this.namespace = String(event.namespace);
    this.taskName = String(event.task_name);
    this.taskVersion = event.task_version === undefined ? "" : String(event.task_version);
    this.stepName = String(event.step_name);
    this.templateStepName = event.template_step_name === undefined ? this.stepName : String(event.template_step_name);
    this.stepType = event.step_type === undefined ? "standard" : String(event.step_type);
    this.handlerCallable = String(handler.callable ?? "");
    this.handlerMethod = typeof handler.method === "string" && handler.method !== "" ? handler.method : "call";
    const init = handler.initialization;
    this.config = isObject(init) ? init : init === null || init === undefined ? {} : { value: init };
    this.context = isObject(event.context) ? event.context : {};
    this.dependencyResults = isObject(event.dependency_results) ? event.dependency_results : {};
    this.attempt = Number(event.attempt);
    this.maxAttempts = Number(event.max_attempts);
    this.retryable = event.retryable === undefined ? true : Boolean(event.retryable);
    this.timeoutMs = Number(event.timeout_ms ?? 0);
    this.deadlineMs = Number(event.deadline_ms ?? 0);
    const cp = event.checkpoint;
    this.checkpoint = isObject(cp) ? { cursor: cp.cursor, data: cp.data, savedAtMs: Number(cp.saved_at_ms) } : null;
    this.actions = options.actions;
    this.baseLogger = options.logger;
    this.signalSource = options.signal;
  }

  /** Logs with the step's correlation id, step name and task uuid added. */
  get logger(): StepLogger {
    if (this.stepLogger === undefined) {
      this.stepLogger = withFields(this.baseLogger ?? silentLogger, {
        correlation_id: this.correlationId,
        step_name: this.stepName,
        task_uuid: this.taskUuid,
      });
    }
    return this.stepLogger;
  }

  /** Aborted when the attempt's deadline passes or the worker stops: pass it to `fetch` and friends. */
  get signal(): AbortSignal {
    let source = this.signalSource;
    if (typeof source === "function") source = source();
    if (source === undefined) source = new AbortController().signal;
    this.signalSource = source;
    return source;
  }

  /** True from the second attempt on. */
  get isRetry(): boolean {
    return this.attempt > 1;
  }

  /** True when a failure of this attempt will not be retried for lack of attempts. */
  get isLastAttempt(): boolean {
    return this.attempt >= this.maxAttempts;
  }

  /** Milliseconds left before this attempt's deadline (may be negative). */
  get remainingMs(): number {
    return this.deadlineMs - Date.now();
  }

  /** A field of the task context, or `defaultValue` when absent. */
  input<T = unknown>(key: string, defaultValue?: T): T {
    return (Object.prototype.hasOwnProperty.call(this.context, key) ? this.context[key] : defaultValue) as T;
  }

  /** The result of parent step `name` (undefined when there is no such parent). */
  dependency<T = unknown>(name: string): T {
    return (Object.prototype.hasOwnProperty.call(this.dependencyResults, name)
      ? this.dependencyResults[name]
      : undefined) as T;
  }

  /**
   * A batch worker's cursor range `[start, end]` (0-based, end-exclusive): from
   * its configuration (`config.cursor`, where the engine puts it, or `config`
   * itself, holding `start_cursor` / `end_cursor`), else from the analyzer's
   * `batch_processing_outcome` among the dependency results (the
   * `cursor_configs` entry whose `batch_id` ends this step's name:
   * `process_batch_002` made from `process_batch` is batch `"002"`). After a
   * checkpoint whose cursor is an integer, `start` is that cursor (resume where
   * it stopped), never past `end`.
   */
  cursorRange(): [number, number] {
    const spec = this.cursorSpec();
    if (spec === undefined) {
      throw new RangeError(
        `step ${this.stepName} has no cursor range: no start_cursor/end_cursor in its configuration and no ` +
          "batch_processing_outcome among its dependency results names its batch",
      );
    }
    let start = spec.start_cursor as number;
    const end = spec.end_cursor as number;
    const cursor = this.checkpoint?.cursor;
    if (typeof cursor === "number" && Number.isInteger(cursor)) start = Math.min(Math.max(start, cursor), end);
    return [start, end];
  }

  private cursorSpec(): Record<string, unknown> | undefined {
    const hasRange = (c: unknown): c is Record<string, unknown> =>
      isObject(c) && typeof c.start_cursor === "number" && typeof c.end_cursor === "number";
    for (const own of [this.config.cursor, this.config]) if (hasRange(own)) return own;
    const prefix = `${this.templateStepName}_`;
    if (!this.stepName.startsWith(prefix)) return undefined;
    const batchId = this.stepName.slice(prefix.length);
    for (const result of Object.values(this.dependencyResults)) {
      const outcome = isObject(result) ? result.batch_processing_outcome : undefined;
      if (!isObject(outcome) || outcome.type !== "create_batches" || !Array.isArray(outcome.cursor_configs)) continue;
      const found = outcome.cursor_configs.find((c: unknown) => hasRange(c) && String(c.batch_id) === batchId);
      if (found !== undefined) return found as Record<string, unknown>;
    }
    return undefined;
  }

  private need(): StepActions {
    if (this.actions === undefined) throw new Error("this context is not attached to a worker");
    return this.actions;
  }

  /**
   * Persists a checkpoint (and extends the lease). A retried attempt sees the
   * last one as `context.checkpoint`.
   */
  async saveCheckpoint(cursor: unknown, data: unknown = null): Promise<void> {
    await this.need().checkpointStep(this.eventId, cursor, data);
    this.checkpoint = { cursor, data, savedAtMs: Date.now() };
  }

  /** Moves this attempt's deadline further (within the configured bound); returns it (epoch ms). */
  async extendLease(): Promise<number> {
    const deadline = await this.need().extendLease(this.eventId);
    this.deadlineMs = deadline;
    return deadline;
  }

  /**
   * Publishes a domain event about this step (`mode`: fast, durable or broadcast),
   * delivered with this step's result: a durable one is stored in the result's
   * transaction, only if the result is recorded. A payload failing the schema the
   * step declares for `name` rejects with `InvalidInput`.
   */
  publish(name: string, payload: unknown, mode: DomainEventMode = "fast"): Promise<DomainEvent> {
    return this.need().publishDomainEvent(name, payload, mode, this.eventId);
  }

  toString(): string {
    return `StepContext(${this.stepName}, task ${this.taskUuid}, attempt ${this.attempt}/${this.maxAttempts})`;
  }
}
