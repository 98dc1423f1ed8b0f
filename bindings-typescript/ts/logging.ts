/**
 * Logging: the `Logger` interface the Worker, Engine and Client write to
 * (`console` fits it, and so do most logging libraries), and the forwarding of
 * the core's log records (`drainLogRecords`) to it.
 */

import { nativeSync } from "./errors";
import type { LogRecord } from "./messages";
import { native } from "./native";

/** Where Tasker writes its logs. `console` is one. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

/** Levels, least to most severe. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "off";

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, off: 5 };

/** Whether a message at `level` passes a `floor` level. */
export function levelEnabled(level: LogLevel, floor: LogLevel): boolean {
  return (RANK[level] ?? RANK.info) >= (RANK[floor] ?? RANK.warn) && level !== "off";
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

let installedLevel: LogLevel | undefined;

/**
 * Starts collecting the core's log records at `level` and above (once per
 * process: the first level wins; `RUST_LOG` overrides it when set). Returns the
 * level in effect.
 */
export function installLogForwarding(level: LogLevel = "warn"): LogLevel {
  if (installedLevel !== undefined) return installedLevel;
  const directive = level === "off" ? "off" : level;
  nativeSync(() => native().installLogForwarding(directive));
  installedLevel = level;
  return level;
}

/** Takes up to `max` buffered records of the core, oldest first. */
export function drainLogRecords(max = 1000): LogRecord[] {
  return JSON.parse(nativeSync(() => native().drainLogRecords(max))) as LogRecord[];
}

/**
 * Hands the core's buffered records to `logger` (records below `level` are
 * dropped); returns how many there were. Does nothing before
 * `installLogForwarding`.
 */
export function forwardLogRecords(logger: Logger, level: LogLevel = "warn", max = 1000): number {
  if (installedLevel === undefined) return 0;
  const records = drainLogRecords(max);
  const floor = RANK[level] ?? RANK.warn;
  for (const r of records) {
    const rank = RANK[r.level] ?? RANK.info;
    if (rank < floor) continue;
    const fields = Object.entries(r.fields ?? {})
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    const text = `[tasker-core ${r.target}] ${r.message}${fields ? " " + fields : ""}`;
    try {
      if (rank >= RANK.error) logger.error(text);
      else if (rank >= RANK.warn) logger.warn(text);
      else if (rank >= RANK.info) logger.info(text);
      else logger.debug(text);
    } catch {
      // A broken logger must not break the worker.
    }
  }
  return records.length;
}

/** A logger that adds fixed fields (the step's correlation id ...) to every call. */
export interface StepLogger extends Logger {
  /** The fields added to every message. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/**
 * Wraps `logger` so every call gets `fields` as its last argument, merged with
 * an object the caller passes last.
 */
export function withFields(logger: Logger, fields: Record<string, unknown>): StepLogger {
  const call =
    (level: keyof Logger) =>
    (message: string, ...args: unknown[]): void => {
      const last = args[args.length - 1];
      if (args.length > 0 && typeof last === "object" && last !== null && !Array.isArray(last) && !(last instanceof Error)) {
        logger[level](message, ...args.slice(0, -1), { ...fields, ...(last as Record<string, unknown>) });
      } else {
        logger[level](message, ...args, fields);
      }
    };
  return {
    fields: Object.freeze({ ...fields }),
    debug: call("debug"),
    info: call("info"),
    warn: call("warn"),
    error: call("error"),
  };
}
