// Decision points and batch processing with TypeScript handlers, on SQLite and
// on PostgreSQL: the conditional-approval and CSV batch examples written with
// the Decision and Batchable mixins, a refused decision, and a batch worker
// that resumes from its checkpoint after a retry.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Batchable,
  Decision,
  defineHandler,
  Engine,
  PermanentError,
  RetryableError,
  StepHandler,
  type HandlerLike,
  type StepContext,
  type StepResult,
  type TaskView,
} from "tasker-core";
import { BACKENDS, EXAMPLES_DIR, step, TEMPLATES_DIR } from "./support";

// ---- conditional approval ----

class ValidateRequest extends StepHandler {
  static override handlerName = "approval_validate";
  call(context: StepContext): StepResult {
    const amount = context.input<number>("amount");
    if (!Number.isInteger(amount) || amount < 0) throw new PermanentError("the request needs an integer `amount` >= 0");
    return this.success({ amount, request_id: context.input("request_id") ?? null });
  }
}

class RouteApproval extends Decision(StepHandler) {
  static override handlerName = "approval_route";
  call(context: StepContext): StepResult {
    const amount = context.dependency<{ amount: number }>("validate_request").amount;
    const autoLimit = (context.config.auto_limit as number | undefined) ?? 1000;
    const financeThreshold = (context.config.finance_threshold as number | undefined) ?? 5000;
    let decided: StepResult;
    if (amount === 0) decided = this.noBranches();
    else if (amount < autoLimit) decided = this.createSteps("auto_approve");
    else if (amount < financeThreshold) decided = this.createSteps("manager_approval");
    else decided = this.createSteps("manager_approval", "finance_approval");
    (decided.result as Record<string, unknown>).amount = amount;
    return decided;
  }
}

const approver = (name: string) => defineHandler(`approval_${name}`, () => ({ approver: name, approved: true }));

class FinalizeApproval extends StepHandler {
  static override handlerName = "approval_finalize";
  call(context: StepContext): StepResult {
    const approvals = Object.values(context.dependencyResults).filter(
      (r): r is { approver: string; approved: boolean } => typeof (r as { approver?: unknown })?.approver === "string",
    );
    return this.success({
      approved: approvals.every((r) => r.approved === true),
      approvals: approvals.map((r) => r.approver).sort(),
      amount: context.dependency<{ amount: number }>("route_approval").amount,
    });
  }
}

// ---- CSV batch ----

const CSV_HEADER = "id,sku,quantity,unit_price_cents";

/** The example's CSV, as core's examples::csv_batch::generate_csv writes it. */
function generateCsv(rows: number): string {
  const lines = [CSV_HEADER];
  for (let i = 0; i < rows; i++) {
    lines.push(`${i + 1},SKU-${String(i % 25).padStart(3, "0")},${((i * 7) % 10) + 1},${100 + ((i * 37) % 900)}`);
  }
  return lines.join("\n");
}

type Totals = { rows: number; quantity: number; revenue_cents: number };

class AnalyzeCsv extends Batchable(StepHandler) {
  static override handlerName = "csv_analyze";
  call(context: StepContext): StepResult {
    const total = generateCsv(context.input<number>("rows")).split("\n").length - 1;
    if (total === 0) return this.noBatches();
    const batches = this.createBatches(total); // cut by the template's batch_size
    (batches.result as Record<string, unknown>).rows = total;
    return batches;
  }
}

class ProcessCsvBatch extends StepHandler {
  static override handlerName = "csv_process_batch";
  async call(context: StepContext): Promise<StepResult> {
    const [start, end] = context.cursorRange();
    const every = Number(context.config.checkpoint_every ?? 0);
    const saved = (context.checkpoint?.data ?? {}) as Partial<Totals>;
    const totals: Totals = { rows: saved.rows ?? 0, quantity: saved.quantity ?? 0, revenue_cents: saved.revenue_cents ?? 0 };
    const lines = generateCsv(context.input<number>("rows")).split("\n").slice(1);
    for (let i = start; i < end; i++) {
      const [, , quantity, price] = lines[i].split(",").map(Number);
      totals.rows += 1;
      totals.quantity += quantity;
      totals.revenue_cents += quantity * price;
      if (every > 0 && (i + 1) % every === 0 && i + 1 < end) await context.saveCheckpoint(i + 1, { ...totals });
    }
    const cursor = context.config.cursor as { batch_id: string };
    return this.success({ ...totals, batch_id: cursor.batch_id });
  }
}

class AggregateCsv extends StepHandler {
  static override handlerName = "csv_aggregate";
  call(context: StepContext): StepResult {
    const batches = Object.values(context.dependencyResults).filter(
      (r): r is Totals => typeof (r as { batch_id?: unknown })?.batch_id === "string",
    );
    const sum = (k: keyof Totals) => batches.reduce((a, b) => a + b[k], 0);
    return this.success({ rows: sum("rows"), quantity: sum("quantity"), revenue_cents: sum("revenue_cents"), batches: batches.length });
  }
}

function dynamicHandlers(): HandlerLike[] {
  return [
    ValidateRequest,
    RouteApproval,
    approver("auto"),
    approver("manager"),
    approver("finance"),
    FinalizeApproval,
    AnalyzeCsv,
    ProcessCsvBatch,
    AggregateCsv,
  ];
}

const names = (task: TaskView): string[] => task.steps.map((s) => s.name);

class UndeclaredRoute extends Decision(StepHandler) {
  static override handlerName = "approval_route";
  call(): StepResult {
    return this.createSteps("auto_approve", "ceo_approval");
  }
}

// ---- a batch worker that checkpoints, fails once, and resumes ----

class ResumePlan extends Batchable(StepHandler) {
  static override handlerName = "resume_plan";
  call(): StepResult {
    return this.createBatches(100);
  }
}

function resumeHandlers(starts: [string, number, number][]): HandlerLike[] {
  return [
    ResumePlan,
    defineHandler("resume_work", async (context) => {
      const [start, end] = context.cursorRange();
      starts.push([context.stepName, context.attempt, start]);
      let sum = Number((context.checkpoint?.data as { sum?: number } | null)?.sum ?? 0);
      for (let i = start; i < end; i++) {
        sum += i;
        if ((i + 1) % 10 === 0 && i + 1 < end) {
          await context.saveCheckpoint(i + 1, { sum });
          if (i + 1 === 70 && context.stepName === "work_002" && context.attempt === 1) {
            throw new RetryableError("lost the connection at item 70");
          }
        }
      }
      return { sum };
    }),
    defineHandler("resume_total", (context) => ({
      sum: Object.values(context.dependencyResults).reduce((a: number, r) => a + Number((r as { sum?: number }).sum ?? 0), 0),
    })),
  ];
}

for (const backend of BACKENDS) {
  describe(`decision and batch steps on ${backend.name}`, () => {
    async function withEngine(handlers: HandlerLike[], templates: string, body: (engine: Engine) => Promise<void>): Promise<void> {
      const db = backend.open();
      const engine = new Engine({ databaseUrl: db.url, templates: [templates], handlers, concurrency: 4 });
      try {
        await body(engine);
      } finally {
        await engine.close();
        db.cleanup();
      }
    }

    test("the approval example runs only the approvals an amount needs", async () => {
      await withEngine(dynamicHandlers(), EXAMPLES_DIR, async (engine) => {
        const cases: [number, string[], string[]][] = [
          [250, ["auto_approve"], ["auto"]],
          [2500, ["manager_approval"], ["manager"]],
          [7500, ["manager_approval", "finance_approval"], ["finance", "manager"]],
          [0, [], []],
        ];
        for (const [amount, ran, approvals] of cases) {
          const task = await engine.run("examples", "conditional_approval", { amount }, { timeoutMs: 60_000 });
          assert.equal(task.state, "complete", JSON.stringify(task.steps.map((s) => [s.name, s.state, s.error])));
          assert.deepEqual(names(task), ["validate_request", "route_approval", ...ran, "finalize_approval"]);
          assert.deepEqual(step(task, "finalize_approval").result, { approved: true, approvals, amount });
        }
      });
    });

    test("the CSV example sums every row across its batches", async () => {
      await withEngine(dynamicHandlers(), EXAMPLES_DIR, async (engine) => {
        const task = await engine.run("examples", "csv_batch", { rows: 1000 }, { timeoutMs: 60_000 });
        assert.equal(task.state, "complete", JSON.stringify(task.steps.map((s) => [s.name, s.state, s.error])));
        assert.deepEqual(names(task), [
          "analyze_csv",
          ...[1, 2, 3, 4, 5].map((i) => `process_csv_batch_${String(i).padStart(3, "0")}`),
          "aggregate_csv",
        ]);
        const rows = generateCsv(1000).split("\n").slice(1).map((l) => l.split(",").map(Number));
        assert.deepEqual(step(task, "aggregate_csv").result, {
          rows: 1000,
          quantity: rows.reduce((a, r) => a + r[2], 0),
          revenue_cents: rows.reduce((a, r) => a + r[2] * r[3], 0),
          batches: 5,
        });
        const empty = await engine.run("examples", "csv_batch", { rows: 0 }, { timeoutMs: 60_000 });
        assert.deepEqual(names(empty), ["analyze_csv", "aggregate_csv"]);
        assert.equal((step(empty, "aggregate_csv").result as { batches: number }).batches, 0);
      });
    });

    test("a decision naming an undeclared step fails and creates nothing", async () => {
      const handlers = dynamicHandlers().filter((h) => h !== RouteApproval);
      await withEngine([...handlers, UndeclaredRoute], EXAMPLES_DIR, async (engine) => {
        const task = await engine.run("examples", "conditional_approval", { amount: 10 }, { timeoutMs: 60_000 });
        assert.equal(task.state, "error");
        assert.deepEqual(names(task), ["validate_request", "route_approval"]);
        const route = step(task, "route_approval");
        assert.equal(route.attempts, 1);
        const error = route.error as { error_type: string; message: string };
        assert.equal(error.error_type, "invalid_decision");
        assert.match(error.message, /`ceo_approval`, which is not a step of template/);
      });
    });

    test("a retried batch worker resumes from its checkpoint", async () => {
      const starts: [string, number, number][] = [];
      await withEngine(resumeHandlers(starts), TEMPLATES_DIR, async (engine) => {
        const task = await engine.run("tstests", "batch_resume", {}, { timeoutMs: 60_000 });
        assert.equal(task.state, "complete", JSON.stringify(task.steps.map((s) => [s.name, s.state, s.error])));
        assert.deepEqual(
          starts.filter(([n]) => n === "work_002").map(([, a, s]) => [a, s]),
          [
            [1, 50],
            [2, 70],
          ],
        );
        assert.equal(step(task, "work_002").attempts, 2);
        assert.deepEqual(step(task, "total").result, { sum: 4950 });
      });
    });
  });
}
