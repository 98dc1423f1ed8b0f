# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/dynamic_handlers"

# Decision points and batch processing with Ruby handlers, on SQLite and on
# PostgreSQL: the conditional-approval and CSV batch examples written with the
# Decision and Batchable mixins, a refused decision, and a batch worker that
# resumes from its checkpoint after a retry.
class DynamicTest < Minitest::Test
  include TestSupport
  extend BackendTests

  def names(task)
    task["steps"].map { |s| s["name"] }
  end

  def engine(url, handlers, templates = EXAMPLES_DIR)
    Tasker::Engine.new(database_url: url, templates: [templates], handlers: handlers, concurrency: 4)
  end

  backend_test("the_approval_example_runs_only_the_approvals_an_amount_needs") do |url|
    eng = engine(url, DynamicHandlers::HANDLERS)
    [
      [250, %w[auto_approve], %w[auto]],
      [2500, %w[manager_approval], %w[manager]],
      [7500, %w[manager_approval finance_approval], %w[finance manager]],
      [0, [], []]
    ].each do |amount, ran, approvals|
      task = eng.run("examples", "conditional_approval", { "amount" => amount }, timeout: 60)
      assert_equal "complete", task["state"], task.inspect
      assert_equal ["validate_request", "route_approval", *ran, "finalize_approval"], names(task)
      assert_equal({ "approved" => true, "approvals" => approvals, "amount" => amount },
                   step(task, "finalize_approval")["result"])
    end
  ensure
    eng&.close
  end

  backend_test("the_csv_example_sums_every_row_across_its_batches") do |url|
    eng = engine(url, DynamicHandlers::HANDLERS)
    task = eng.run("examples", "csv_batch", { "rows" => 1000 }, timeout: 60)
    assert_equal "complete", task["state"], task.inspect
    assert_equal ["analyze_csv", *(1..5).map { |i| format("process_csv_batch_%03d", i) }, "aggregate_csv"], names(task)
    rows = DynamicHandlers.generate_csv(1000).lines.drop(1).map { |l| l.strip.split(",") }
    assert_equal({ "rows" => 1000, "quantity" => rows.sum { |r| Integer(r[2]) },
                   "revenue_cents" => rows.sum { |r| Integer(r[2]) * Integer(r[3]) }, "batches" => 5 },
                 step(task, "aggregate_csv")["result"])
    empty = eng.run("examples", "csv_batch", { "rows" => 0 }, timeout: 60)
    assert_equal %w[analyze_csv aggregate_csv], names(empty)
    assert_equal 0, step(empty, "aggregate_csv")["result"]["batches"]
  ensure
    eng&.close
  end

  class UndeclaredRoute < Tasker::StepHandler
    include Tasker::Decision

    def call(_context)
      create_steps("auto_approve", "ceo_approval")
    end
  end

  backend_test("a_decision_naming_an_undeclared_step_fails_and_creates_nothing") do |url|
    eng = engine(url, DynamicHandlers::HANDLERS.merge("approval_route" => UndeclaredRoute))
    task = eng.run("examples", "conditional_approval", { "amount" => 10 }, timeout: 60)
    assert_equal "error", task["state"]
    assert_equal %w[validate_request route_approval], names(task)
    route = step(task, "route_approval")
    assert_equal 1, route["attempts"]
    assert_equal "invalid_decision", route["error"]["error_type"]
    assert_includes route["error"]["message"], "`ceo_approval`, which is not a step of template"
  ensure
    eng&.close
  end

  class ResumePlan < Tasker::StepHandler
    include Tasker::Batchable

    def call(_context)
      create_batches(100)
    end
  end

  def resume_handlers(starts)
    work = Tasker::FunctionHandler.new("resume_work") do |ctx|
      first, last = ctx.cursor_range
      starts << [ctx.step_name, ctx.attempt, first]
      total = Integer(((ctx.checkpoint || {})["data"] || {}).fetch("sum", 0))
      (first...last).each do |i|
        total += i
        next unless ((i + 1) % 10).zero? && i + 1 < last

        ctx.save_checkpoint(i + 1, { "sum" => total })
        if i + 1 == 70 && ctx.step_name == "work_002" && ctx.attempt == 1
          raise Tasker::RetryableError, "lost the connection at item 70"
        end
      end
      { "sum" => total }
    end
    total = Tasker::FunctionHandler.new("resume_total") do |ctx|
      { "sum" => ctx.dependency_results.values.sum { |r| r.fetch("sum", 0) } }
    end
    { "resume_plan" => ResumePlan, "resume_work" => work, "resume_total" => total }
  end

  backend_test("a_retried_batch_worker_resumes_from_its_checkpoint") do |url|
    starts = Thread::Queue.new
    eng = engine(url, resume_handlers(starts), TEMPLATES_DIR)
    task = eng.run("rbtests", "batch_resume", {}, timeout: 60)
    assert_equal "complete", task["state"], task.inspect
    seen = []
    seen << starts.pop until starts.empty?
    assert_equal [[1, 50], [2, 70]], seen.select { |n, _, _| n == "work_002" }.map { |_, a, s| [a, s] }
    assert_equal 2, step(task, "work_002")["attempts"]
    assert_equal({ "sum" => 4950 }, step(task, "total")["result"])
  ensure
    eng&.close
  end
end
