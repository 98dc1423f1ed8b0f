/**
 * Tasker for Node.js: write step handlers in TypeScript or JavaScript and run
 * them on the Tasker core.
 *
 * ```ts
 * import { Engine, StepHandler, type StepContext } from "tasker-core";
 *
 * class Square extends StepHandler {
 *   static handlerName = "square";
 *   async call(context: StepContext) {
 *     const parent = Object.values(context.dependencyResults)[0] as { value: number } | undefined;
 *     const n = parent ? parent.value : context.input<number>("n");
 *     return this.success({ value: n * n });
 *   }
 * }
 *
 * const engine = new Engine({ templates: ["examples"], handlers: [Square] });
 * const task = await engine.run("examples", "linear", { n: 6 });
 * await engine.close();
 * ```
 *
 * See the package's README for the whole API.
 */

import { native, nativePath } from "./native";

export { Bridge, optionsToWire, taskRequest } from "./bridge";
export type { BridgeOptions, CreateTaskOptions } from "./bridge";
export { StepContext } from "./context";
export type { Checkpoint, StepActions, StepContextOptions } from "./context";
export { Client, Engine, FINISHED_STATES, TaskFailed, templateNamespaces } from "./engine";
export { EventSubscriber } from "./events";
export type { EventSubscriberOptions } from "./events";
export type { ClientOptions, EngineOptions, RunOptions } from "./engine";
export {
  DatabaseError,
  ERROR_CODES,
  errorClassFor,
  ForkedProcess,
  fromNative,
  InternalError,
  InvalidConfig,
  InvalidInput,
  isStepFailure,
  Overloaded,
  PermanentError,
  RetryableError,
  StepFailure,
  TaskerError,
  TaskNotFound,
  TemplateNotFound,
  UnknownEvent,
  WaitTimedOut,
  WorkerClosed,
} from "./errors";
export type { ErrorCode, RetryableErrorOptions, StepFailureOptions } from "./errors";
export { defineHandler, isFunctionHandler, StepHandler } from "./handler";
export type { FunctionHandler, HandlerClass, HandlerFunction } from "./handler";
export { drainLogRecords, forwardLogRecords, installLogForwarding, levelEnabled, silentLogger, withFields } from "./logging";
export type { Logger, LogLevel, StepLogger } from "./logging";
export type {
  CheckpointMessage,
  CompletionReport,
  DomainEvent,
  DomainEventMode,
  DrainReport,
  HandlerSpec,
  JsonValue,
  LogRecord,
  StepErrorMessage,
  StepEvent,
  StepResultMessage,
  StepView,
  StoredDomainEvent,
  TaskRequest,
  TaskState,
  TaskView,
  WorkerStatus,
} from "./messages";
export {
  Api,
  ApiConnectionError,
  ApiResponse,
  ApiTimeoutError,
  Batchable,
  createBatches,
  createSteps,
  Decision,
  isRetryableStatus,
  noBatches,
  noBranches,
  parseRetryAfter,
} from "./mixins";
export type { ApiMethods, ApiRequestOptions, BatchableMethods, DecisionMethods } from "./mixins";
export { HandlerRegistry, handlerNameOf } from "./registry";
export type { HandlerLike, HandlersArg, Resolved } from "./registry";
export {
  encodeResult,
  failure,
  failureFromError,
  INVALID_RESULT,
  invalidResultJson,
  isStepResult,
  StepResult,
  success,
} from "./result";
export type { FailureOptions, StepError } from "./result";
export { Worker } from "./worker";
export type { WorkerOptions } from "./worker";
export { nativePath } from "./native";

/** The package version. */
export const VERSION = "0.1.0";

/** The native addon's version (loads the addon). */
export function nativeVersion(): string {
  return native().nativeVersion();
}

/** The PID of the process that loaded the addon (loads it). */
export function runtimePid(): number | null {
  return native().runtimePid();
}

/** Where the addon is loaded from. */
export function addonPath(): string {
  return nativePath();
}
