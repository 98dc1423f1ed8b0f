"""Decision points and batch processing with Python handlers, on SQLite and on
PostgreSQL: the conditional-approval and CSV batch examples written with the
Decision and Batchable mixins, a refused decision, and a batch worker that resumes
from its checkpoint after a retry."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import tasker

from conftest import EXAMPLES_DIR, TEMPLATES_DIR, step

# -- conditional approval ----------------------------------------------------------------


class ValidateRequest(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        amount = context.input("amount")
        if not isinstance(amount, int) or amount < 0:
            raise tasker.PermanentError("the request needs an integer `amount` >= 0")
        return self.success({"amount": amount, "request_id": context.input("request_id")})


class RouteApproval(tasker.StepHandler, tasker.Decision):
    def call(self, context: tasker.StepContext) -> Any:
        amount = context.dependency("validate_request")["amount"]
        auto_limit = context.config.get("auto_limit", 1000)
        finance_threshold = context.config.get("finance_threshold", 5000)
        if amount == 0:
            decided = self.no_branches()
        elif amount < auto_limit:
            decided = self.create_steps("auto_approve")
        elif amount < finance_threshold:
            decided = self.create_steps("manager_approval")
        else:
            decided = self.create_steps("manager_approval", "finance_approval")
        decided.result["amount"] = amount
        return decided


def approver(name: str) -> Any:
    class Approve(tasker.StepHandler):
        def call(self, context: tasker.StepContext) -> Any:
            return self.success({"approver": name, "approved": True})

    return Approve


class FinalizeApproval(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        approvals = sorted(r["approver"] for r in context.dependency_results.values() if "approver" in r)
        approved = all(r.get("approved") is True for r in context.dependency_results.values() if "approver" in r)
        amount = context.dependency("route_approval")["amount"]
        return self.success({"approved": approved, "approvals": approvals, "amount": amount})


# -- CSV batch -----------------------------------------------------------------------------------

CSV_HEADER = "id,sku,quantity,unit_price_cents"


def generate_csv(rows: int) -> str:
    """The example's CSV, as core's examples::csv_batch::generate_csv writes it."""
    lines = [CSV_HEADER]
    for i in range(rows):
        lines.append(f"{i + 1},SKU-{i % 25:03},{(i * 7) % 10 + 1},{100 + (i * 37) % 900}")
    return "\n".join(lines)


class AnalyzeCsv(tasker.StepHandler, tasker.Batchable):
    def call(self, context: tasker.StepContext) -> Any:
        total = len(generate_csv(int(context.input("rows"))).splitlines()) - 1
        if total == 0:
            return self.no_batches()
        batches = self.create_batches(total)  # cut by the template's batch_size
        batches.result["rows"] = total
        return batches


class ProcessCsvBatch(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        start, end = context.cursor_range()
        every = int(context.config.get("checkpoint_every", 0))
        saved = (context.checkpoint or {}).get("data") or {}
        totals = {k: int(saved.get(k, 0)) for k in ("rows", "quantity", "revenue_cents")}
        lines = generate_csv(int(context.input("rows"))).splitlines()[1:]
        for i in range(start, end):
            _, _, quantity, price = lines[i].split(",")
            totals["rows"] += 1
            totals["quantity"] += int(quantity)
            totals["revenue_cents"] += int(quantity) * int(price)
            if every and (i + 1) % every == 0 and i + 1 < end:
                context.save_checkpoint(i + 1, totals)
        return self.success(dict(totals, batch_id=context.config["cursor"]["batch_id"]))


class AggregateCsv(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        batches = [r for r in context.dependency_results.values() if "batch_id" in r]
        totals = {k: sum(b[k] for b in batches) for k in ("rows", "quantity", "revenue_cents")}
        return self.success(dict(totals, batches=len(batches)))


DYNAMIC_HANDLERS: Dict[str, Any] = {
    "approval_validate": ValidateRequest,
    "approval_route": RouteApproval,
    "approval_auto": approver("auto"),
    "approval_manager": approver("manager"),
    "approval_finance": approver("finance"),
    "approval_finalize": FinalizeApproval,
    "csv_analyze": AnalyzeCsv,
    "csv_process_batch": ProcessCsvBatch,
    "csv_aggregate": AggregateCsv,
}


def names(task: Dict[str, Any]) -> List[str]:
    return [s["name"] for s in task["steps"]]


def test_the_approval_example_runs_only_the_approvals_an_amount_needs(database_url: str) -> None:
    with tasker.Engine(database_url, templates=[EXAMPLES_DIR], handlers=DYNAMIC_HANDLERS, concurrency=4) as eng:
        for amount, ran, approvals in [
            (250, ["auto_approve"], ["auto"]),
            (2500, ["manager_approval"], ["manager"]),
            (7500, ["manager_approval", "finance_approval"], ["finance", "manager"]),
            (0, [], []),
        ]:
            task = eng.run("examples", "conditional_approval", {"amount": amount}, timeout=60)
            assert task["state"] == "complete", task
            assert names(task) == ["validate_request", "route_approval", *ran, "finalize_approval"]
            assert step(task, "finalize_approval")["result"] == {
                "approved": True,
                "approvals": approvals,
                "amount": amount,
            }


def test_the_csv_example_sums_every_row_across_its_batches(database_url: str) -> None:
    with tasker.Engine(database_url, templates=[EXAMPLES_DIR], handlers=DYNAMIC_HANDLERS, concurrency=4) as eng:
        task = eng.run("examples", "csv_batch", {"rows": 1000}, timeout=60)
        assert task["state"] == "complete", task
        assert names(task) == [
            "analyze_csv",
            *[f"process_csv_batch_{i:03}" for i in range(1, 6)],
            "aggregate_csv",
        ]
        rows = [line.split(",") for line in generate_csv(1000).splitlines()[1:]]
        assert step(task, "aggregate_csv")["result"] == {
            "rows": 1000,
            "quantity": sum(int(r[2]) for r in rows),
            "revenue_cents": sum(int(r[2]) * int(r[3]) for r in rows),
            "batches": 5,
        }
        empty = eng.run("examples", "csv_batch", {"rows": 0}, timeout=60)
        assert names(empty) == ["analyze_csv", "aggregate_csv"]
        assert step(empty, "aggregate_csv")["result"]["batches"] == 0


class UndeclaredRoute(tasker.StepHandler, tasker.Decision):
    def call(self, context: tasker.StepContext) -> Any:
        return self.create_steps("auto_approve", "ceo_approval")


def test_a_decision_naming_an_undeclared_step_fails_and_creates_nothing(database_url: str) -> None:
    handlers = dict(DYNAMIC_HANDLERS, approval_route=UndeclaredRoute)
    with tasker.Engine(database_url, templates=[EXAMPLES_DIR], handlers=handlers, concurrency=4) as eng:
        task = eng.run("examples", "conditional_approval", {"amount": 10}, timeout=60)
    assert task["state"] == "error"
    assert names(task) == ["validate_request", "route_approval"]
    route = step(task, "route_approval")
    assert route["attempts"] == 1
    assert route["error"]["error_type"] == "invalid_decision"
    assert "`ceo_approval`, which is not a step of template" in route["error"]["message"]


STARTS: List[Tuple[str, int, int]] = []


class ResumePlan(tasker.StepHandler, tasker.Batchable):
    def call(self, context: tasker.StepContext) -> Any:
        return self.create_batches(100)


class ResumeWork(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        start, end = context.cursor_range()
        STARTS.append((context.step_name, context.attempt, start))
        total = int(((context.checkpoint or {}).get("data") or {}).get("sum", 0))
        for i in range(start, end):
            total += i
            if (i + 1) % 10 == 0 and i + 1 < end:
                context.save_checkpoint(i + 1, {"sum": total})
                if i + 1 == 70 and context.step_name == "work_002" and context.attempt == 1:
                    raise tasker.RetryableError("lost the connection at item 70")
        return self.success({"sum": total})


class ResumeTotal(tasker.StepHandler):
    def call(self, context: tasker.StepContext) -> Any:
        return self.success({"sum": sum(r["sum"] for r in context.dependency_results.values() if "sum" in r)})


def test_a_retried_batch_worker_resumes_from_its_checkpoint(database_url: str) -> None:
    STARTS.clear()
    handlers = {"resume_plan": ResumePlan, "resume_work": ResumeWork, "resume_total": ResumeTotal}
    with tasker.Engine(database_url, templates=[TEMPLATES_DIR], handlers=handlers, concurrency=4) as eng:
        task = eng.run("pytests", "batch_resume", {}, timeout=60)
    assert task["state"] == "complete", task
    assert [(a, s) for n, a, s in STARTS if n == "work_002"] == [(1, 50), (2, 70)]
    assert step(task, "work_002")["attempts"] == 2
    assert step(task, "total")["result"] == {"sum": 4950}
