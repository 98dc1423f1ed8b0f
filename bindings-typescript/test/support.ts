/**
 * Shared helpers of the tests: where the repository's files are, database URLs
 * (SQLite temp files; per-test PostgreSQL databases created and dropped with
 * psql), and the example handlers in two styles (classes and functions).
 *
 * The tests run from a temporary folder with `tasker-core` installed from its
 * tarball (scripts/test-typescript), so repository paths come from TASKER_REPO.
 */

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  defineHandler,
  failure,
  StepHandler,
  type HandlerLike,
  type Logger,
  type StepContext,
  type StepResult,
  type StepView,
  type TaskView,
} from "tasker-core";

function repoRoot(): string {
  const root = process.env.TASKER_REPO;
  if (!root) throw new Error("TASKER_REPO is not set: run the tests through scripts/test-typescript");
  return root;
}

export const REPO = repoRoot();
export const EXAMPLES_DIR = path.join(REPO, "examples");
export const GOLDEN_DIR = path.join(REPO, "proto-contract", "golden");
export const TEMPLATES_DIR = path.join(REPO, "bindings-typescript", "test", "templates");

/** A fresh temporary folder, removed by `cleanup`. */
export function tempDir(prefix = "tasker-ts-"): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A SQLite URL on a fresh temporary file; `cleanup` removes it. */
export function sqliteDatabase(): { url: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir("tasker-ts-sqlite-");
  return { url: `sqlite://${path.join(dir, "test.db")}`, cleanup };
}

// ---- PostgreSQL ----

export const ADMIN_URL = process.env.TASKER_TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const DB_PREFIX = "tasker_tstest_";

function psqlBinary(): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "psql");
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  const base = "/usr/lib/postgresql";
  if (fs.existsSync(base)) {
    const versions = fs.readdirSync(base).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const candidate = path.join(base, v, "bin", "psql");
      if (fs.existsSync(candidate)) return candidate;
    }
  }
  throw new Error("psql not found: the PostgreSQL tests need it to create their databases (install postgresql-client)");
}

/** Runs SQL through psql against `url`; throws with psql's message when it fails. */
export function psql(sql: string, url: string = ADMIN_URL): string {
  try {
    return execFileSync(psqlBinary(), ["-X", "-w", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], {
      encoding: "utf8",
      env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
      timeout: 60_000,
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? String(e);
    throw new Error(`psql failed against ${new URL(url).host}: ${stderr.trim()}`);
  }
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = "/" + name;
  return u.toString();
}

let swept = false;
let counter = 0;

/**
 * A fresh PostgreSQL database (created now, dropped by `cleanup`). Never skips:
 * when the server cannot be reached, this throws and the test fails.
 */
export function postgresDatabase(): { url: string; cleanup: () => void } {
  if (!swept) {
    // Leftovers of killed runs: databases of this prefix made more than an hour
    // ago (the name carries its creation time), never those of test files
    // running now in other processes.
    const names = psql(`SELECT datname FROM pg_database WHERE datname LIKE '${DB_PREFIX}%'`)
      .split("\n")
      .filter((n) => {
        const made = parseInt(n.slice(DB_PREFIX.length).split("_")[0] ?? "", 36);
        return n !== "" && Number.isFinite(made) && Date.now() - made > 3_600_000;
      });
    for (const n of names) {
      try {
        psql(`DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`);
      } catch {
        // Another run may be dropping it too.
      }
    }
    swept = true;
  }
  const name = `${DB_PREFIX}${Date.now().toString(36)}_${process.pid}_${++counter}`;
  psql(`CREATE DATABASE "${name}"`);
  return {
    url: withDatabase(ADMIN_URL, name),
    cleanup: () => {
      psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/** Both backends, for `for (const backend of BACKENDS)` test loops. */
export const BACKENDS: { name: string; open: () => { url: string; cleanup: () => void } }[] = [
  { name: "sqlite", open: sqliteDatabase },
  { name: "postgres", open: postgresDatabase },
];

// ---- handlers of the examples ----

type Value = { value: number };

function values(context: StepContext): number[] {
  return Object.entries(context.dependencyResults).map(([name, r]) => {
    const v = (r as Value | null)?.value;
    if (typeof v !== "number") throw new TypeError(`dependency ${name} has no numeric value`);
    return v;
  });
}

function single(context: StepContext): number {
  const vs = values(context);
  if (vs.length === 0) return context.input<number>("n");
  if (vs.length === 1) return vs[0];
  throw new TypeError(`expected at most one dependency, got ${vs.length}`);
}

/** The example handlers as classes (`static handlerName`). */
export function classHandlers(): HandlerLike[] {
  class Square extends StepHandler {
    static override handlerName = "square";
    async call(context: StepContext): Promise<StepResult> {
      const n = single(context);
      return this.success({ value: n * n });
    }
  }
  class MultiplySquare extends StepHandler {
    static override handlerName = "multiply_square";
    call(context: StepContext): StepResult {
      const p = values(context).reduce((a, b) => a * b, 1);
      return this.success({ value: p * p });
    }
  }
  class Sum extends StepHandler {
    static override handlerName = "sum";
    async call(context: StepContext): Promise<StepResult> {
      return this.success({ value: values(context).reduce((a, b) => a + b, 0) });
    }
  }
  class FlakySquare extends StepHandler {
    static override handlerName = "flaky_square";
    async call(context: StepContext): Promise<StepResult> {
      if (context.attempt < 3) {
        return this.failure(`simulated failure on attempt ${context.attempt}`, { errorType: "flaky" });
      }
      const n = single(context);
      return this.success({ value: n * n });
    }
  }
  return [Square, MultiplySquare, Sum, FlakySquare];
}

/** The example handlers as `defineHandler` functions (plain returns). */
export function functionHandlers(): HandlerLike[] {
  return [
    defineHandler("square", async (context) => {
      const n = single(context);
      return { value: n * n };
    }),
    defineHandler("multiply_square", (context) => {
      const p = values(context).reduce((a, b) => a * b, 1);
      return { value: p * p };
    }),
    defineHandler("sum", (context) => ({ value: values(context).reduce((a, b) => a + b, 0) })),
    defineHandler("flaky_square", async (context) => {
      if (context.attempt < 3) {
        return failure(`simulated failure on attempt ${context.attempt}`, { errorType: "flaky" });
      }
      const n = single(context);
      return { value: n * n };
    }),
  ];
}

/** The step named `name` of a task view. */
export function step(task: TaskView, name: string): StepView {
  const found = task.steps.find((s) => s.name === name);
  if (found === undefined) throw new Error(`task ${task.task_uuid} has no step ${name}`);
  return found;
}

/** A logger that records every call (and prints nothing). */
export function recordingLogger(): Logger & { lines: { level: string; message: string; args: unknown[] }[] } {
  const lines: { level: string; message: string; args: unknown[] }[] = [];
  const at =
    (level: string) =>
    (message: string, ...args: unknown[]): void => {
      lines.push({ level, message, args });
    };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
