/**
 * The handler API: the `StepHandler` base class and `defineHandler` for plain
 * functions.
 */

import type { StepContext } from "./context";
import { StepResult, type FailureOptions } from "./result";

/**
 * Base class of class-based handlers.
 *
 * Implement `call(context)` (async or not) and return `this.success(...)` or
 * `this.failure(...)`; throw `PermanentError` or `RetryableError` to fail with
 * those semantics (any other thrown error is a retryable failure). A template's
 * `handler.method` may name another method with the same signature.
 *
 * `static handlerName` is the callable the class registers under when passed in
 * a list (default: the class name). One instance serves every step naming its
 * callable with the same `initialization` (`this.config`), possibly several at
 * once: keep per-step state in locals, not on `this`.
 */
export abstract class StepHandler {
  /** The callable this class registers under when given in a list. */
  static handlerName?: string;

  /** The template's `handler.initialization`. */
  config: Record<string, unknown>;

  constructor(config: Record<string, unknown> = {}) {
    this.config = { ...config };
  }

  /** Runs one attempt. */
  abstract call(context: StepContext): StepResult | Promise<StepResult>;

  /** A successful attempt carrying `result`. */
  success(result: unknown = null, metadata?: Record<string, unknown>): StepResult {
    return StepResult.success(result, metadata);
  }

  /**
   * A failed attempt; retryable unless `retryable: false`. `retryAfter` is in
   * seconds (recorded as `retry_after_ms`, retryable failures only).
   */
  failure(message: string, options: FailureOptions = {}): StepResult {
    return StepResult.failure(message, options);
  }
}

/** A handler class (abstract or not) whose instances extend `StepHandler`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type HandlerClass<T extends StepHandler = StepHandler> = abstract new (...args: any[]) => T;

/** The function of a function handler: a plain return value is the step's result. */
export type HandlerFunction = (context: StepContext) => unknown;

const FUNCTION_HANDLER = Symbol.for("tasker-core.FunctionHandler");

/** A function registered under a callable name (made by `defineHandler`). */
export interface FunctionHandler {
  /** The callable it registers under. */
  readonly handlerName: string;
  /** The function: `(context) => value | Promise<value>`. */
  readonly fn: HandlerFunction;
  /** @internal */
  readonly [FUNCTION_HANDLER]: true;
}

/**
 * A handler written as a function of the context, registered under `name`:
 *
 * ```ts
 * const square = defineHandler("square", async (context) => {
 *   const n = context.input<number>("n");
 *   return { value: n * n };
 * });
 * ```
 *
 * A plain return value is a success with that result; a returned `StepResult`
 * (from `success` / `failure`) is kept as it is; thrown errors follow the
 * failure table.
 */
export function defineHandler(name: string, fn: HandlerFunction): FunctionHandler {
  if (typeof name !== "string" || name === "") {
    throw new TypeError('defineHandler needs the callable name, e.g. defineHandler("square", fn)');
  }
  if (typeof fn !== "function") throw new TypeError("defineHandler needs a function");
  return Object.freeze({ handlerName: name, fn, [FUNCTION_HANDLER]: true as const });
}

/** True for what `defineHandler` returns. */
export function isFunctionHandler(value: unknown): value is FunctionHandler {
  return (
    typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[FUNCTION_HANDLER] === true
  );
}
