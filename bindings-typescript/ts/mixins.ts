/**
 * Capabilities a handler class mixes in: `Api` (HTTP on Node's built-in fetch),
 * `Decision` and `Batchable` (the result shapes of decision and batchable steps,
 * identical to the Rust core's traits). Each is a function from a handler class
 * to a subclass, so they compose:
 *
 * ```ts
 * class Fetch extends Api(StepHandler) { baseUrl = "https://api.example"; ... }
 * class Route extends Decision(StepHandler) { ... }
 * class Plan extends Batchable(Decision(StepHandler)) { ... }
 * ```
 */

import { RetryableError } from "./errors";
import type { HandlerClass } from "./handler";
import { StepResult } from "./result";

/** The request failed before any response (refused, reset, DNS ...). Retryable. */
export class ApiConnectionError extends RetryableError {}

/** The request timed out. Retryable. */
export class ApiTimeoutError extends RetryableError {}

/**
 * A `Retry-After` header in seconds: delta-seconds or an HTTP date (seconds from
 * `nowMs`, never negative). Null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === "") return null;
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, (when - nowMs) / 1000);
}

/** Whether an HTTP status is worth retrying: 408, 429 and 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** An HTTP response, its body read: `status`, `headers`, `body`, `text`, `json()`. */
export class ApiResponse {
  constructor(
    /** The status code. */
    readonly status: number,
    /** The status text. */
    readonly statusText: string,
    /** The response headers (case-insensitive). */
    readonly headers: Headers,
    /** The raw body. */
    readonly body: Uint8Array,
    /** The requested URL. */
    readonly url: string,
  ) {}

  /** 2xx. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as UTF-8 text. */
  get text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON (null for an empty body). */
  json<T = unknown>(): T {
    return (this.body.length === 0 ? null : JSON.parse(this.text)) as T;
  }

  /** The `Retry-After` header in seconds, or null. */
  get retryAfter(): number | null {
    return parseRetryAfter(this.headers.get("retry-after"));
  }

  /** 408, 429 and 5xx are worth retrying; other 4xx are not. */
  get isRetryable(): boolean {
    return isRetryableStatus(this.status);
  }

  toString(): string {
    return `ApiResponse(${this.status} ${this.url})`;
  }
}

/** Options of an HTTP request. */
export interface ApiRequestOptions {
  /** Query parameters appended to the URL. */
  params?: Record<string, string | number | boolean | (string | number | boolean)[]>;
  /** A body sent as JSON (sets `content-type: application/json`). */
  json?: unknown;
  /** A raw body (string, bytes, URLSearchParams, FormData ...). */
  body?: string | Uint8Array | URLSearchParams | FormData | Blob;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Time limit in ms (default: the handler's `timeoutMs`). */
  timeoutMs?: number;
  /** Aborts the request (pass `context.signal` to stop at the step's deadline). */
  signal?: AbortSignal;
}

/** What `Api(...)` adds to a handler class. */
export interface ApiMethods {
  /** Prefixed to relative paths. */
  baseUrl: string;
  /** Sent with every request. */
  defaultHeaders: Record<string, string>;
  /** Default time limit of a request, in ms. */
  timeoutMs: number;
  request(method: string, path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  get(path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  post(path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  put(path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  patch(path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  delete(path: string, options?: ApiRequestOptions): Promise<ApiResponse>;
  apiSuccess(response: ApiResponse, result?: unknown): StepResult;
  apiFailure(response: ApiResponse | unknown, message?: string): StepResult;
}

/** The names `Api(...)` adds (never entry points for `handler.method`). */
export const API_HELPERS: readonly string[] = [
  "request",
  "get",
  "post",
  "put",
  "patch",
  "delete",
  "apiSuccess",
  "apiFailure",
];

function isTimeout(e: unknown): boolean {
  return e instanceof ApiTimeoutError || (e instanceof Error && e.name === "TimeoutError");
}

/**
 * HTTP helpers on Node's built-in `fetch` (no dependency). Set `baseUrl`,
 * `defaultHeaders` and `timeoutMs` as fields of your class.
 * `get/post/put/patch/delete` return an `ApiResponse` whatever the status; a
 * connection error throws `ApiConnectionError`, a timeout `ApiTimeoutError`
 * (both retryable). `apiFailure(response)` turns a failed response into the
 * right failure: `http_<status>`, 408/429/5xx retryable (with Retry-After, in
 * seconds or as an HTTP date, honoured), other 4xx permanent.
 */
export function Api<TBase extends HandlerClass>(Base: TBase) {
  abstract class ApiHandler extends Base implements ApiMethods {
    baseUrl = "";
    defaultHeaders: Record<string, string> = {};
    timeoutMs = 30000;

    /** The absolute URL for `path` with `params`. */
    urlFor(path: string, params?: ApiRequestOptions["params"]): string {
      let url = /^https?:\/\//i.test(path) || this.baseUrl === "" ? path : this.baseUrl.replace(/\/+$/, "") + "/" + path.replace(/^\/+/, "");
      if (params !== undefined) {
        const query = new URLSearchParams();
        for (const [k, v] of Object.entries(params)) {
          for (const item of Array.isArray(v) ? v : [v]) query.append(k, String(item));
        }
        const q = query.toString();
        if (q !== "") url += (url.includes("?") ? "&" : "?") + q;
      }
      return url;
    }

    async request(method: string, path: string, options: ApiRequestOptions = {}): Promise<ApiResponse> {
      const url = this.urlFor(path, options.params);
      const verb = method.toUpperCase();
      const headers = new Headers({ accept: "application/json" });
      for (const [k, v] of Object.entries(this.defaultHeaders)) headers.set(k, v);
      let body: ApiRequestOptions["body"] | undefined;
      if (options.json !== undefined) {
        body = JSON.stringify(options.json);
        headers.set("content-type", "application/json");
      } else if (options.body !== undefined) {
        body = options.body;
      }
      for (const [k, v] of Object.entries(options.headers ?? {})) headers.set(k, v);
      const limit = options.timeoutMs ?? this.timeoutMs;
      const timeout = AbortSignal.timeout(Math.max(1, limit));
      const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
      let response: Response;
      let bytes: Uint8Array;
      try {
        response = await fetch(url, { method: verb, headers, body, signal });
        bytes = new Uint8Array(await response.arrayBuffer());
      } catch (e) {
        if (timeout.aborted || isTimeout(e)) {
          throw new ApiTimeoutError(`${verb} ${url} timed out after ${limit} ms`, { cause: e });
        }
        if (options.signal?.aborted) throw e;
        const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
        throw new ApiConnectionError(`${verb} ${url} failed: ${cause}`, { cause: e });
      }
      return new ApiResponse(response.status, response.statusText, response.headers, bytes, url);
    }

    get(path: string, options?: ApiRequestOptions): Promise<ApiResponse> {
      return this.request("GET", path, options);
    }

    post(path: string, options?: ApiRequestOptions): Promise<ApiResponse> {
      return this.request("POST", path, options);
    }

    put(path: string, options?: ApiRequestOptions): Promise<ApiResponse> {
      return this.request("PUT", path, options);
    }

    patch(path: string, options?: ApiRequestOptions): Promise<ApiResponse> {
      return this.request("PATCH", path, options);
    }

    delete(path: string, options?: ApiRequestOptions): Promise<ApiResponse> {
      return this.request("DELETE", path, options);
    }

    /** A success carrying `result`, or the response's JSON body when not given. */
    apiSuccess(response: ApiResponse, result?: unknown): StepResult {
      return StepResult.success(result === undefined ? response.json() : result, { http_status: response.status });
    }

    /**
     * The failure for a failed response (as the Rust core's `Api` trait):
     * `http_<status>`; 408, 429 and 5xx retryable, other 4xx permanent; a
     * Retry-After header becomes the retry hint. A connection error or timeout
     * (the thrown error) is a retryable `http_connection_error` / `http_timeout`.
     */
    apiFailure(response: ApiResponse | unknown, message?: string): StepResult {
      if (!(response instanceof ApiResponse)) {
        const errorType = isTimeout(response) ? "http_timeout" : "http_connection_error";
        const text = message ?? (response instanceof Error ? response.message : String(response));
        return StepResult.failure(text || errorType, { errorType, retryable: true });
      }
      const status = response.status;
      let detail = message ?? response.statusText;
      if (!detail) detail = response.text.slice(0, 200) || "request failed";
      const retryable = isRetryableStatus(status);
      const retryAfter = retryable ? response.retryAfter : null;
      return StepResult.failure(`HTTP ${status}: ${detail}`, {
        errorType: `http_${status}`,
        retryable,
        retryAfter: retryAfter ?? undefined,
        metadata: { http_status: status, url: response.url },
      });
    }
  }
  return ApiHandler;
}

/** What `Decision(...)` adds to a handler class. */
export interface DecisionMethods {
  createSteps(...names: (string | Iterable<string>)[]): StepResult;
  noBranches(): StepResult;
}

/** The names `Decision(...)` adds. */
export const DECISION_HELPERS: readonly string[] = ["createSteps", "noBranches"];

/**
 * For `type: decision` steps: choose which branches (the steps that depend on
 * this one) the engine creates; it creates them, and the deferred convergence
 * steps waiting for them, when the result is written.
 */
export function Decision<TBase extends HandlerClass>(Base: TBase) {
  abstract class DecisionHandler extends Base implements DecisionMethods {
    /** Create these branches (names of steps the template declares). */
    createSteps(...names: (string | Iterable<string>)[]): StepResult {
      return createSteps(...names);
    }

    /** Create none of them. */
    noBranches(): StepResult {
      return noBranches();
    }
  }
  return DecisionHandler;
}

/** What `Batchable(...)` adds to a handler class. */
export interface BatchableMethods {
  createBatches(totalItems: number, batchSize?: number): StepResult;
  noBatches(): StepResult;
}

/** The names `Batchable(...)` adds. */
export const BATCHABLE_HELPERS: readonly string[] = ["createBatches", "noBatches"];

/**
 * For `type: batchable` steps: split the work into cursor ranges; the engine
 * creates one batch worker per range (`<worker step>_<batch_id>`) and the
 * convergence step after them. Batch workers read their range with
 * `context.cursorRange()` and save progress with
 * `context.saveCheckpoint(cursor, data)`; a retried or resumed attempt starts at
 * the last checkpoint's cursor.
 */
export function Batchable<TBase extends HandlerClass>(Base: TBase) {
  abstract class BatchableHandler extends Base implements BatchableMethods {
    /**
     * Batches of `batchSize` over `totalItems` (0-based, end-exclusive cursors;
     * ids "001", "002", ...). Without `batchSize`, the engine cuts them by the
     * template's `batch_config.batch_size`.
     */
    createBatches(totalItems: number, batchSize?: number): StepResult {
      return createBatches(totalItems, batchSize);
    }

    /** Nothing to process: the convergence step runs at once. */
    noBatches(): StepResult {
      return noBatches();
    }
  }
  return BatchableHandler;
}

// The same results as free functions (for function handlers).

/** A decision step's result creating these branches. */
export function createSteps(...names: (string | Iterable<string>)[]): StepResult {
  const flat: string[] = [];
  for (const n of names) {
    if (typeof n === "string") flat.push(n);
    else for (const x of n) flat.push(String(x));
  }
  return StepResult.success({ decision_point_outcome: { type: "create_steps", step_names: flat } });
}

/** A decision step's result creating no branch. */
export function noBranches(): StepResult {
  return StepResult.success({ decision_point_outcome: { type: "no_branches" } });
}

/**
 * A batchable step's result: batches of `batchSize` over `totalItems`; without
 * `batchSize`, the template's `batch_config.batch_size` cuts them.
 */
export function createBatches(totalItems: number, batchSize?: number): StepResult {
  if (!Number.isSafeInteger(totalItems) || totalItems < 0) {
    throw new RangeError(`totalItems must be a whole number >= 0, got ${totalItems}`);
  }
  if (batchSize === undefined) {
    return StepResult.success({ batch_processing_outcome: { type: "create_batches", total_items: totalItems } });
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 0) {
    throw new RangeError(`batchSize must be a whole number >= 0, got ${batchSize}`);
  }
  const size = Math.max(batchSize, 1);
  const count = Math.ceil(totalItems / size);
  const cursorConfigs = [];
  for (let i = 0; i < count; i++) {
    cursorConfigs.push({
      batch_id: String(i + 1).padStart(3, "0"),
      start_cursor: i * size,
      end_cursor: Math.min((i + 1) * size, totalItems),
    });
  }
  return StepResult.success({
    batch_processing_outcome: { type: "create_batches", total_items: totalItems, cursor_configs: cursorConfigs },
  });
}

/** A batchable step's result with nothing to process (the convergence step runs at once). */
export function noBatches(): StepResult {
  return StepResult.success({ batch_processing_outcome: { type: "no_batches" } });
}
