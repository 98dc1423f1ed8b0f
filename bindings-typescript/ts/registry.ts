/**
 * Maps a step event's `handler.callable` to something the worker can run.
 * Handlers are registered explicitly: a class (its `static handlerName`, else its
 * class name), a `defineHandler` function, or any entry of a `{callable: handler}`
 * record (a class, an instance with a `call` method, a `defineHandler` result or
 * a plain function of the context).
 */

import type { StepContext } from "./context";
import { isFunctionHandler, StepHandler, type FunctionHandler, type HandlerFunction } from "./handler";
import { API_HELPERS, BATCHABLE_HELPERS, DECISION_HELPERS } from "./mixins";
import { StepResult } from "./result";

/** Something that can be registered as a handler. */
export type HandlerLike =
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  | (abstract new (...args: any[]) => { call(context: StepContext): unknown })
  | FunctionHandler
  | HandlerFunction
  | { call(context: StepContext): unknown };

/** Handlers as the Worker/Engine take them: a list (named by themselves) or a record by callable. */
export type HandlersArg = HandlerRegistry | readonly HandlerLike[] | Record<string, HandlerLike> | undefined;

/** A runnable entry point. */
export interface Resolved {
  /** Runs the entry point. */
  readonly fn: (context: StepContext) => unknown;
  /** Whether a plain return value is a success (function handlers) or must be a StepResult (classes). */
  readonly plainReturns: boolean;
}

/** Names that are helpers of the base class and mixins, never entry points. */
const HELPERS = new Set<string>([
  "constructor",
  "success",
  "failure",
  "urlFor",
  "config",
  "baseUrl",
  "defaultHeaders",
  "timeoutMs",
  ...API_HELPERS,
  ...DECISION_HELPERS,
  ...BATCHABLE_HELPERS,
]);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClass = new (...args: any[]) => { call?: unknown } & Record<string, unknown>;

function isClass(value: unknown): value is AnyClass {
  if (typeof value !== "function") return false;
  const proto = (value as { prototype?: unknown }).prototype;
  if (typeof proto !== "object" || proto === null) return false;
  if (proto instanceof StepHandler || typeof (proto as { call?: unknown }).call === "function") return true;
  return /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** The callable name a handler registers under when given in a list. */
export function handlerNameOf(handler: HandlerLike): string {
  if (isFunctionHandler(handler)) return handler.handlerName;
  if (typeof handler === "function") {
    const declared = (handler as { handlerName?: unknown }).handlerName;
    if (typeof declared === "string" && declared !== "") return declared;
    if (handler.name) return handler.name;
  }
  throw new TypeError(
    "cannot tell the callable name of this handler: give classes a `static handlerName`, " +
      "use defineHandler(name, fn), or pass handlers as a record { callable: handler }",
  );
}

function stableKey(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
    );
  } catch {
    return String(value);
  }
}

/**
 * Handlers by callable name. Class instances are made on first use and cached
 * per callable and `initialization` (one instance per callable in the usual case).
 */
export class HandlerRegistry {
  private readonly explicit = new Map<string, HandlerLike>();
  private readonly instances = new Map<string, Record<string, unknown>>();

  constructor(handlers?: Exclude<HandlersArg, HandlerRegistry>) {
    if (handlers === undefined || handlers === null) return;
    if (Array.isArray(handlers)) {
      for (const h of handlers as readonly HandlerLike[]) this.register(handlerNameOf(h), h);
    } else {
      for (const [name, h] of Object.entries(handlers as Record<string, HandlerLike>)) this.register(name, h);
    }
  }

  /** A registry from the Worker's `handlers` argument. */
  static from(handlers: HandlersArg): HandlerRegistry {
    return handlers instanceof HandlerRegistry ? handlers : new HandlerRegistry(handlers);
  }

  /** Registers a handler under `name` (replacing a previous one). */
  register(name: string, handler: HandlerLike): this {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`a callable name must be a non-empty string, got ${String(name)}`);
    }
    const ok =
      typeof handler === "function" ||
      isFunctionHandler(handler) ||
      (typeof handler === "object" && handler !== null && typeof (handler as { call?: unknown }).call === "function");
    if (!ok) throw new TypeError(`handler for ${name} must be a class, an object with call(), or a function`);
    this.explicit.set(name, handler);
    for (const key of [...this.instances.keys()]) if (key.startsWith(name + "\u0000")) this.instances.delete(key);
    return this;
  }

  /** Registered callables, sorted. */
  names(): string[] {
    return [...this.explicit.keys()].sort();
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.explicit.has(name);
  }

  private notFound(callable: string): StepResult {
    const known = this.names().join(", ") || "(none)";
    return StepResult.failure(`no handler for callable ${JSON.stringify(callable)}; registered: ${known}`, {
      errorType: "handler_not_found",
      retryable: false,
    });
  }

  private static unknownMethod(callable: string, what: string, method: string): StepResult {
    return StepResult.failure(`handler ${JSON.stringify(callable)} (${what}) has no method ${JSON.stringify(method)}`, {
      errorType: "unknown_method",
      retryable: false,
    });
  }

  /**
   * The entry point for a step, or the failure to record (`handler_not_found`,
   * `unknown_method`). Throws when a handler class's constructor throws.
   */
  resolve(callable: string, method: string, config: Record<string, unknown>): Resolved | StepResult {
    const target = this.explicit.get(callable);
    if (target === undefined) return this.notFound(callable);
    const entry = method || "call";
    if (isFunctionHandler(target) || (typeof target === "function" && !isClass(target))) {
      if (entry !== "call") return HandlerRegistry.unknownMethod(callable, "a function", entry);
      const fn = (isFunctionHandler(target) ? target.fn : target) as HandlerFunction;
      return { fn, plainReturns: true };
    }
    let instance: Record<string, unknown>;
    if (typeof target === "function") {
      const key = callable + "\u0000" + stableKey(config);
      let made = this.instances.get(key);
      if (made === undefined) {
        made = new (target as AnyClass)({ ...config });
        // Whatever the constructor did, the template's initialization is the config.
        if (typeof made === "object" && made !== null) (made as { config?: unknown }).config = { ...config };
        this.instances.set(key, made);
      }
      instance = made;
    } else {
      instance = target as unknown as Record<string, unknown>;
    }
    const what = (instance.constructor as { name?: string } | undefined)?.name || "object";
    if (entry.startsWith("_") || entry.startsWith("#") || HELPERS.has(entry)) {
      return HandlerRegistry.unknownMethod(callable, what, entry);
    }
    const fn = instance[entry];
    if (typeof fn !== "function" || fn === Object.prototype[entry as keyof object]) {
      return HandlerRegistry.unknownMethod(callable, what, entry);
    }
    return { fn: (context: StepContext) => (fn as HandlerFunction).call(instance, context), plainReturns: false };
  }
}
