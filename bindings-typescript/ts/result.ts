/**
 * What a handler returns (`StepResult`) and how it becomes a `step_result`
 * message: one JSON text per result, checked here so that one bad result can
 * never spoil the batch it travels in.
 */

import { checkSeconds, isStepFailure } from "./errors";
import type { StepErrorMessage, StepResultMessage } from "./messages";

/** Error type recorded for a result that cannot be serialised or breaks the contract. */
export const INVALID_RESULT = "invalid_result";

const RESULT_BRAND = Symbol.for("tasker-core.StepResult");

/** Why an attempt failed. */
export interface StepError {
  /** What went wrong, for people. */
  message: string;
  /** A short classifier: an error class name, `timeout`, `http_503`, ... */
  errorType: string;
  /** Whether another attempt may succeed. */
  retryable: boolean;
  /** Wait at least this long before the next attempt. */
  retryAfterMs?: number;
  /** An application error code. */
  code?: string;
  /** Where it happened (a stack trace). */
  backtrace?: string;
}

/** Options of `failure(...)`. */
export interface FailureOptions {
  /** The classifier recorded as `error_type` (default `handler_error`). */
  errorType?: string;
  /** Whether another attempt may succeed (default true: the failure table). */
  retryable?: boolean;
  /** Seconds to wait before the next attempt (retryable failures only; dropped otherwise). */
  retryAfter?: number;
  /** An application error code. */
  code?: string;
  /** Free-form metadata recorded with the result. */
  metadata?: Record<string, unknown>;
  /** Where it happened (a stack trace). */
  backtrace?: string;
}

/** One attempt's outcome. Build it with `success` / `failure` (or the handler helpers). */
export class StepResult {
  /** True when the attempt succeeded. */
  readonly success: boolean;
  /** The step's result (children see it as a dependency result). */
  readonly result: unknown;
  /** Why it failed (failures only). */
  readonly error?: StepError;
  /** Free-form metadata recorded with the result. */
  readonly metadata: Record<string, unknown>;

  constructor(success: boolean, result: unknown, error?: StepError, metadata?: Record<string, unknown>) {
    this.success = success;
    this.result = result === undefined ? null : result;
    if (error !== undefined) this.error = error;
    this.metadata = { ...(metadata ?? {}) };
  }

  /** @internal */
  get [RESULT_BRAND](): true {
    return true;
  }

  /** A success carrying `result`. */
  static success(result: unknown = null, metadata?: Record<string, unknown>): StepResult {
    return new StepResult(true, result, undefined, metadata);
  }

  /** A failure; retryable unless `retryable: false`. */
  static failure(message: string, options: FailureOptions = {}): StepResult {
    const retryable = options.retryable ?? true;
    const error: StepError = {
      message: String(message),
      errorType: options.errorType === undefined ? "handler_error" : String(options.errorType),
      retryable: Boolean(retryable),
    };
    if (options.retryAfter !== undefined && options.retryAfter !== null) {
      checkSeconds(options.retryAfter, "retryAfter");
      if (retryable) error.retryAfterMs = secondsToMs(options.retryAfter);
    }
    if (options.code !== undefined && options.code !== null) error.code = String(options.code);
    if (options.backtrace !== undefined) error.backtrace = String(options.backtrace);
    return new StepResult(false, null, error, options.metadata);
  }

  /** A result from a `step_result` message (the `event_id` is not kept). */
  static fromMessage(message: Omit<StepResultMessage, "event_id"> & { event_id?: string }): StepResult {
    let error: StepError | undefined;
    if (message.error !== undefined && message.error !== null) {
      const e = message.error;
      error = { message: e.message, errorType: e.error_type, retryable: e.retryable };
      if (e.retry_after_ms !== undefined) error.retryAfterMs = e.retry_after_ms;
      if (e.code !== undefined) error.code = e.code;
      if (e.backtrace !== undefined) error.backtrace = e.backtrace;
    }
    return new StepResult(message.success, message.result, error, message.metadata);
  }

  /** The members of a `step_result` message (without `event_id`). */
  toMessage(): Omit<StepResultMessage, "event_id"> {
    const msg: Omit<StepResultMessage, "event_id"> = { success: this.success, result: this.result };
    if (this.error !== undefined) msg.error = errorMessage(this.error);
    if (Object.keys(this.metadata).length > 0) msg.metadata = this.metadata;
    return msg;
  }

  toString(): string {
    return this.success
      ? `StepResult.success(${safeText(this.result)})`
      : `StepResult.failure(${this.error?.errorType}: ${this.error?.message})`;
  }
}

/** True for a `StepResult` (also one made by another copy of this package). */
export function isStepResult(value: unknown): value is StepResult {
  return (
    value instanceof StepResult ||
    (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[RESULT_BRAND] === true)
  );
}

/** A successful attempt carrying `result`. */
export function success(result: unknown = null, metadata?: Record<string, unknown>): StepResult {
  return StepResult.success(result, metadata);
}

/**
 * A failed attempt. Retryable unless `retryable: false`; `retryAfter` (seconds)
 * asks for at least that long before the next attempt and only applies to
 * retryable failures (it is dropped from a permanent one, as in the Rust core).
 */
export function failure(message: string, options: FailureOptions = {}): StepResult {
  return StepResult.failure(message, options);
}

/** Seconds to whole milliseconds, rounded up so a hint is never shortened. */
export function secondsToMs(seconds: number): number {
  checkSeconds(seconds, "retryAfter");
  return Math.ceil(seconds * 1000 - 1e-9);
}

function errorMessage(e: StepError): StepErrorMessage {
  const m: StepErrorMessage = { message: e.message, error_type: e.errorType, retryable: e.retryable };
  if (e.retryAfterMs !== undefined) m.retry_after_ms = e.retryAfterMs;
  if (e.code !== undefined) m.code = e.code;
  if (e.backtrace !== undefined) m.backtrace = e.backtrace;
  return m;
}

function safeText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The name of what was thrown: the constructor's name for objects. */
function thrownName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object" || typeof value === "function") {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor;
    if (ctor !== undefined && typeof ctor.name === "string" && ctor.name !== "") return ctor.name;
    return "Object";
  }
  return typeof value;
}

/**
 * The failure-table row for a thrown value: `PermanentError` / `RetryableError`
 * (and subclasses) keep their retryability and retry hint; anything else is
 * retryable. `errorType` is the class name; the stack is recorded as `backtrace`.
 */
export function failureFromError(thrown: unknown): StepResult {
  const isError = thrown instanceof Error;
  const errorType = thrownName(thrown);
  let message: string;
  if (isError) message = thrown.message || errorType;
  else if (typeof thrown === "string") message = thrown;
  else message = `${errorType} thrown: ${safeText(thrown)}`;
  const error: StepError = { message, errorType, retryable: true };
  if (isError && typeof thrown.stack === "string") error.backtrace = thrown.stack;
  let metadata: Record<string, unknown> | undefined;
  if (isStepFailure(thrown)) {
    error.errorType = thrown.errorType;
    error.retryable = Boolean(thrown.retryable);
    const retryAfter = (thrown as { retryAfter?: unknown }).retryAfter;
    if (error.retryable && typeof retryAfter === "number") error.retryAfterMs = secondsToMs(retryAfter);
    if (thrown.code !== undefined) error.code = String(thrown.code);
    metadata = thrown.metadata;
  } else if (isError) {
    const code = (thrown as { code?: unknown }).code;
    if (typeof code === "string" || typeof code === "number") error.code = String(code);
  }
  return new StepResult(false, null, error, metadata);
}

/** An `invalid_result` failure of `eventId` as a step_result JSON text. */
export function invalidResultJson(eventId: string, problem: string, executionTimeMs?: number): string {
  const msg: StepResultMessage = {
    event_id: eventId,
    success: false,
    result: null,
    error: { message: problem, error_type: INVALID_RESULT, retryable: false },
  };
  if (executionTimeMs !== undefined) msg.execution_time_ms = wholeMs(executionTimeMs);
  return JSON.stringify(msg);
}

function wholeMs(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms) : 0;
}

/**
 * One `step_result` message as JSON text.
 *
 * `outcome` should be a `StepResult`. Anything else, or a result that cannot be
 * serialised as JSON (NaN or Infinity, a BigInt, a circular structure, a throwing
 * `toJSON`), becomes a permanent `invalid_result` failure naming the problem: the
 * step is never lost and the batch it travels in is never spoiled. NaN and
 * Infinity are refused rather than turned into null as JSON.stringify would, as in
 * Python and Ruby (the cross-language conformance suite checks it). JSON.stringify's
 * other rules apply (`undefined` members are dropped; `toJSON` is honoured).
 */
export function encodeResult(eventId: string, outcome: unknown, executionTimeMs?: number): string {
  if (!isStepResult(outcome)) {
    return invalidResultJson(
      eventId,
      `handler returned ${describe(outcome)}, expected a StepResult ` +
        "(return this.success(...) or this.failure(...); function handlers may return any JSON value)",
      executionTimeMs,
    );
  }
  if (typeof outcome.success !== "boolean") {
    return invalidResultJson(eventId, "`success` must be a boolean", executionTimeMs);
  }
  if (outcome.success && outcome.error !== undefined) {
    return invalidResultJson(eventId, "a success must not carry an error", executionTimeMs);
  }
  if (!outcome.success && outcome.error === undefined) {
    return invalidResultJson(eventId, "a failure must carry an error", executionTimeMs);
  }
  const msg: StepResultMessage = { event_id: eventId, success: outcome.success, result: outcome.result };
  if (outcome.error !== undefined) msg.error = errorMessage(outcome.error);
  if (Object.keys(outcome.metadata).length > 0) msg.metadata = outcome.metadata;
  if (executionTimeMs !== undefined) msg.execution_time_ms = wholeMs(executionTimeMs);
  try {
    return JSON.stringify(msg, refuseNonFiniteNumbers);
  } catch (e) {
    const which = outcome.success ? "result" : "error or metadata";
    const why = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    return invalidResultJson(eventId, `the ${which} cannot be serialised as JSON: ${why}`, executionTimeMs);
  }
}

/** A JSON.stringify replacer that throws on NaN and ±Infinity (JSON has no such numbers). */
function refuseNonFiniteNumbers(key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new RangeError(`${value}${key === "" ? "" : ` (key "${key}")`} is not a JSON number`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object (${thrownName(value)})`;
  return `a ${typeof value}`;
}
