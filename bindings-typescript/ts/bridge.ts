/**
 * `Bridge`: the native contract (`tasker_core::bridge`) one-to-one, taking and
 * returning JavaScript values. JSON crosses the boundary as text, encoded here
 * with `JSON.stringify` and decoded with `JSON.parse`.
 *
 * Every call that waits returns a Promise and waits on the core's tokio runtime,
 * so the JavaScript thread never blocks. Errors are `TaskerError` subclasses
 * (`.code` names the error code).
 */

import { nativeAsync, nativeSync } from "./errors";
import type {
  CompletionReport,
  DomainEvent,
  DomainEventMode,
  DrainReport,
  StepEvent,
  StepResultMessage,
  TaskRequest,
  TaskView,
  WorkerStatus,
} from "./messages";
import { native, type NativeBridge } from "./native";
import { invalidResultJson } from "./result";

/** Options of a bridge (the core's `BridgeOptions`, camelCase). */
export interface BridgeOptions {
  /** `sqlite://PATH` or `postgres://...`; default: env `TASKER_DATABASE_URL`. */
  databaseUrl?: string;
  /** Namespaces whose steps this process claims; none makes a client only. */
  namespaces?: string[];
  /** Most steps the bridge holds at once (default 8). */
  concurrency?: number;
  /** YAML template files or folders, loaded and registered in the database. */
  templates?: string[];
  /** Also run the core's Rust example handlers in-process. */
  builtinHandlers?: boolean;
  /** `hybrid` (default), `event` or `polling`. */
  wakeupMode?: "hybrid" | "event" | "polling";
  /** Fallback polling interval for claims, in ms. */
  pollIntervalMs?: number;
  /** How far after its claim `extendLease` may move an attempt's deadline, in ms. */
  maxLeaseExtensionMs?: number;
}

/** Options of `createTask`. */
export interface CreateTaskOptions {
  /** Template version (default: the highest registered). */
  version?: string;
  /** A key already used returns the existing task. */
  idempotencyKey?: string;
  /** Correlation id (default: a new one). */
  correlationId?: string;
}

const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());

/** The options JSON object the core reads (snake_case keys; unknown keys are refused there). */
export function optionsToWire(options: BridgeOptions): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    wire[snake(key)] = value;
  }
  if (Array.isArray(wire.templates)) wire.templates = (wire.templates as unknown[]).map(String);
  return wire;
}

/** A task request from `createTask`'s arguments. */
export function taskRequest(
  namespace: string,
  name: string,
  context: unknown = {},
  options: CreateTaskOptions = {},
): TaskRequest {
  const request: TaskRequest = { namespace, name, context: context ?? {} };
  if (options.version !== undefined) request.version = options.version;
  if (options.idempotencyKey !== undefined) request.idempotency_key = options.idempotencyKey;
  if (options.correlationId !== undefined) request.correlation_id = String(options.correlationId);
  return request;
}

/** Milliseconds as a non-negative finite number (the addon reads them as f64). */
function ms(value: number, what: string): number {
  if (typeof value !== "number" || Number.isNaN(value)) throw new TypeError(`${what} must be a number of ms`);
  return Math.max(0, value);
}

/** An open bridge: a worker on its namespaces, plus the client calls. */
export class Bridge {
  /** The native object (methods take and return JSON text). */
  readonly native: NativeBridge;
  /** The options it was opened with (as sent to the core). */
  readonly options: Readonly<Record<string, unknown>>;

  private constructor(handle: NativeBridge, options: Record<string, unknown>) {
    this.native = handle;
    this.options = Object.freeze(options);
  }

  /** Opens the database (applying migrations), registers the templates and starts the engine. */
  static async open(options: BridgeOptions = {}): Promise<Bridge> {
    const wire = optionsToWire(options);
    const text = JSON.stringify(wire);
    const handle = await nativeAsync(native().NativeBridge.open(text));
    return new Bridge(handle, wire);
  }

  /**
   * A bridge for benchmarks: it hands out an endless supply of synthetic step
   * events (at most `concurrency` at once) and drops their results, so a poll +
   * complete round trip costs what the contract costs, with no database work.
   */
  static async loopback(concurrency = 64): Promise<Bridge> {
    const handle = await nativeAsync(native().NativeBridge.loopback(concurrency));
    return new Bridge(handle, { loopback: true, concurrency });
  }

  // ---- worker side ----

  /**
   * Waits up to `timeoutMs` for at least one step event; at most `maxEvents` (and
   * never more than the free capacity). `[]` on timeout and while draining;
   * `WorkerClosed` after shutdown.
   */
  async pollStepEvents(maxEvents = 1, timeoutMs = 1000): Promise<StepEvent[]> {
    const max = Math.max(0, Math.min(0xffffffff, Math.floor(maxEvents)));
    const text = await nativeAsync(this.native.pollStepEvents(max, ms(timeoutMs, "timeoutMs")));
    return JSON.parse(text) as StepEvent[];
  }

  /**
   * Sends results (`step_result` objects, or JSON texts of them) in one batch;
   * returns the completion report `{accepted, invalid, rejected}`. An object
   * that cannot be serialised is sent as an `invalid_result` failure of its event
   * instead of spoiling the batch.
   */
  async completeStepEvents(results: Iterable<StepResultMessage | string>): Promise<CompletionReport> {
    const parts: string[] = [];
    for (const r of results) {
      if (typeof r === "string") {
        parts.push(r);
        continue;
      }
      try {
        parts.push(JSON.stringify(r));
      } catch (e) {
        const eventId = typeof r === "object" && r !== null ? (r as { event_id?: unknown }).event_id : undefined;
        if (typeof eventId !== "string") throw e;
        parts.push(invalidResultJson(eventId, `the result cannot be serialised as JSON: ${String(e)}`));
      }
    }
    return this.completeStepEventsJson("[" + parts.join(",") + "]");
  }

  /** As `completeStepEvents`, with the JSON array already encoded. */
  async completeStepEventsJson(resultsJson: string): Promise<CompletionReport> {
    return JSON.parse(await nativeAsync(this.native.completeStepEvents(resultsJson))) as CompletionReport;
  }

  /** Moves the event's deadline (within the configured bound); returns it (epoch ms). */
  async extendLease(eventId: string): Promise<number> {
    return nativeAsync(this.native.extendLease(String(eventId)));
  }

  /** Hands the step back to the queue without a result (no attempt counted); false when not held. */
  async releaseStepEvent(eventId: string): Promise<boolean> {
    return nativeAsync(this.native.releaseStepEvent(String(eventId)));
  }

  /** Persists a batch worker's checkpoint and extends the lease. */
  async checkpointStep(eventId: string, cursor: unknown, data: unknown = null): Promise<void> {
    const cursorJson = JSON.stringify(cursor === undefined ? null : cursor);
    const dataJson = JSON.stringify(data === undefined ? null : data);
    await nativeAsync(this.native.checkpointStep(String(eventId), cursorJson, dataJson));
  }

  /**
   * Publishes a domain event (mode `fast`, `durable` or `broadcast`). With
   * `eventId` (a held step event) it carries that step's identity and is delivered
   * with the step's result (a durable one in the result's transaction); a payload
   * failing the schema the step declares rejects with `InvalidInput`. Without, a
   * durable event is stored before the Promise settles.
   */
  async publishDomainEvent(
    name: string,
    payload: unknown,
    mode: DomainEventMode = "fast",
    eventId?: string,
  ): Promise<DomainEvent> {
    const payloadJson = JSON.stringify(payload === undefined ? null : payload);
    const text = await nativeAsync(
      nativeSync(() => this.native.publishDomainEvent(name, payloadJson, mode, eventId ?? null)),
    );
    return JSON.parse(text) as DomainEvent;
  }

  /** State and counters. */
  workerStatus(): WorkerStatus {
    return JSON.parse(nativeSync(() => this.native.workerStatus())) as WorkerStatus;
  }

  /**
   * Stops claiming, waits up to `graceMs` for outstanding events' results,
   * releases the rest: `{drained, released}`. Idempotent.
   */
  async shutdown(graceMs = 30000): Promise<DrainReport> {
    return JSON.parse(await nativeAsync(this.native.shutdown(ms(graceMs, "graceMs")))) as DrainReport;
  }

  // ---- client side ----

  /** Creates a task; returns its view. */
  async createTask(namespace: string, name: string, context: unknown = {}, options: CreateTaskOptions = {}): Promise<TaskView> {
    return this.submitTask(taskRequest(namespace, name, context, options));
  }

  /** Creates a task from a `task_request` message. */
  async submitTask(request: TaskRequest): Promise<TaskView> {
    return JSON.parse(await nativeAsync(this.native.createTask(JSON.stringify(request)))) as TaskView;
  }

  /** The task view (state, steps with results and errors). */
  async getTask(taskUuid: string): Promise<TaskView> {
    return JSON.parse(await nativeAsync(this.native.getTask(String(taskUuid)))) as TaskView;
  }

  /** Waits until the task is finished; `WaitTimedOut` when `timeoutMs` runs out first. */
  async waitForTask(taskUuid: string, timeoutMs = 60000): Promise<TaskView> {
    const text = await nativeAsync(this.native.waitForTask(String(taskUuid), ms(timeoutMs, "timeoutMs")));
    return JSON.parse(text) as TaskView;
  }
}
