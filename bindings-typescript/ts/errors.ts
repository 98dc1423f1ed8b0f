/**
 * Errors.
 *
 * Two families live here:
 *
 * - Errors of the core (`TaskerError` and one subclass per error code), thrown by
 *   `Bridge`, `Worker`, `Engine` and `Client` calls. Each has a `code` (the table
 *   in `proto-contract/README.md`); match on it to be exact.
 * - Errors a handler throws to say how its step failed: `PermanentError` (never
 *   retried) and `RetryableError` (retried, optionally not before `retryAfter`
 *   seconds). Subclass them freely: the recorded `error_type` is the class name
 *   of the error thrown.
 */

/** Every error code of the core. */
export type ErrorCode =
  | "invalid_config"
  | "invalid_input"
  | "worker_closed"
  | "unknown_event"
  | "task_not_found"
  | "template_not_found"
  | "wait_timed_out"
  | "database"
  | "overloaded"
  | "forked"
  | "internal";

/** The error codes, in the core's order. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "invalid_config",
  "invalid_input",
  "worker_closed",
  "unknown_event",
  "task_not_found",
  "template_not_found",
  "wait_timed_out",
  "database",
  "overloaded",
  "forked",
  "internal",
];

/** Base of every error the Tasker core raises; `code` names the error code. */
export class TaskerError extends Error {
  /** The error code. */
  readonly code: ErrorCode;
  /** Whether calling again later may succeed (true only for `Overloaded`). */
  readonly retryable: boolean = false;
  /** Seconds to wait before calling again (`Overloaded`), or undefined. */
  readonly retryAfter: number | undefined = undefined;

  constructor(message: string, code: ErrorCode = "internal", options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad options: an unknown key, a bad database URL, a template that fails to load (`invalid_config`). */
export class InvalidConfig extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "invalid_config", options);
  }
}

/** A malformed argument: not JSON, not a UUID, a context the schema refuses (`invalid_input`). */
export class InvalidInput extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "invalid_input", options);
  }
}

/** The bridge has shut down (`worker_closed`). */
export class WorkerClosed extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "worker_closed", options);
  }
}

/** The step event is not held: completed, released, timed out or never handed out (`unknown_event`). */
export class UnknownEvent extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "unknown_event", options);
  }
}

/** No task with that UUID (`task_not_found`). */
export class TaskNotFound extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "task_not_found", options);
  }
}

/** No registered template matches `namespace/name[@version]` (`template_not_found`). */
export class TemplateNotFound extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "template_not_found", options);
  }
}

/** `waitForTask` reached its timeout before the task finished (`wait_timed_out`). */
export class WaitTimedOut extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "wait_timed_out", options);
  }
}

/** The database failed or could not be reached (`database`). */
export class DatabaseError extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "database", options);
  }
}

/**
 * The core cannot take the work now (a full queue, a namespace with too many ready
 * steps, an unreachable database); call again after `retryAfter` seconds (`overloaded`).
 */
export class Overloaded extends TaskerError {
  override readonly retryable: boolean = true;
  override readonly retryAfter: number | undefined;

  constructor(message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(message, "overloaded", options);
    this.retryAfter = options?.retryAfter;
  }
}

/** The addon was loaded before `fork()` and used in the child (`forked`). */
export class ForkedProcess extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "forked", options);
  }
}

/** A bug in the core, a Rust panic included (`internal`). */
export class InternalError extends TaskerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "internal", options);
  }
}

type CodedErrorClass = new (message: string, options?: { cause?: unknown; retryAfter?: number }) => TaskerError;

const CLASSES: Record<ErrorCode, CodedErrorClass> = {
  invalid_config: InvalidConfig,
  invalid_input: InvalidInput,
  worker_closed: WorkerClosed,
  unknown_event: UnknownEvent,
  task_not_found: TaskNotFound,
  template_not_found: TemplateNotFound,
  wait_timed_out: WaitTimedOut,
  database: DatabaseError,
  overloaded: Overloaded,
  forked: ForkedProcess,
  internal: InternalError,
};

/** The error class for a code. */
export function errorClassFor(code: ErrorCode): CodedErrorClass {
  return CLASSES[code] ?? InternalError;
}

const NATIVE_PREFIX = /^\[tasker:([a-z_]+)(?: retry_after_ms=(\d+))?\] ([\s\S]*)$/;

/**
 * The `TaskerError` for an error thrown by the addon (message
 * `[tasker:<code>] <text>`, or `[tasker:<code> retry_after_ms=<n>] <text>`);
 * anything else is returned unchanged.
 */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof TaskerError) return err;
  const m = NATIVE_PREFIX.exec(err.message);
  if (m === null) return err;
  const code = (m[1] in CLASSES ? m[1] : "internal") as ErrorCode;
  const retryAfter = m[2] === undefined ? undefined : Number(m[2]) / 1000;
  return new CLASSES[code](m[3], { cause: err, retryAfter });
}

/** Runs `call`, rethrowing an addon error as its `TaskerError`. */
export function nativeSync<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits `promise`, rethrowing an addon error as its `TaskerError`. */
export async function nativeAsync<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (e) {
    throw fromNative(e);
  }
}

// ---- Errors a handler throws ----------------------------------------------------

const STEP_FAILURE = Symbol.for("tasker-core.StepFailure");

/** Options of `PermanentError` and `RetryableError`. */
export interface StepFailureOptions {
  /** An application error code, recorded with the failure. */
  code?: string;
  /** Free-form metadata recorded with the result. */
  metadata?: Record<string, unknown>;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Base of the errors a handler throws to fail its step on purpose. Throw one of
 * the two subclasses; the step's `error_type` is the class name of the error
 * (so `class CardDeclined extends PermanentError {}` records `CardDeclined`).
 */
export abstract class StepFailure extends Error {
  /** Whether another attempt may succeed. */
  abstract readonly retryable: boolean;
  /** An application error code, recorded with the failure. */
  readonly code?: string;
  /** Free-form metadata recorded with the result. */
  readonly metadata: Record<string, unknown>;

  constructor(message = "", options: StepFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options.code !== undefined) this.code = String(options.code);
    this.metadata = { ...(options.metadata ?? {}) };
  }

  /** The recorded error type: the class name. */
  get errorType(): string {
    return this.constructor.name;
  }

  /** @internal */
  get [STEP_FAILURE](): true {
    return true;
  }
}

/** The step failed and retrying cannot help: it is not retried. */
export class PermanentError extends StepFailure {
  readonly retryable = false;
}

/** Options of `RetryableError`. */
export interface RetryableErrorOptions extends StepFailureOptions {
  /** Wait at least this many seconds before the next attempt. */
  retryAfter?: number;
}

/**
 * The step failed but may succeed later: it is retried (up to the step's
 * `max_attempts`), not before `retryAfter` seconds when given.
 */
export class RetryableError extends StepFailure {
  readonly retryable = true;
  /** Seconds to wait before the next attempt, when given. */
  readonly retryAfter?: number;

  constructor(message = "", options: RetryableErrorOptions = {}) {
    super(message, options);
    if (options.retryAfter !== undefined) {
      checkSeconds(options.retryAfter, "retryAfter");
      this.retryAfter = options.retryAfter;
    }
  }
}

/** True for a `PermanentError` or `RetryableError` (also across package copies). */
export function isStepFailure(value: unknown): value is StepFailure {
  return (
    value instanceof StepFailure ||
    (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STEP_FAILURE] === true)
  );
}

/** Throws unless `seconds` is a finite number >= 0. */
export function checkSeconds(seconds: unknown, what: string): asserts seconds is number {
  if (typeof seconds !== "number" || Number.isNaN(seconds)) {
    throw new TypeError(`${what} must be a number of seconds, got ${String(seconds)}`);
  }
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new RangeError(`${what} must be a finite number of seconds >= 0, got ${seconds}`);
  }
}
