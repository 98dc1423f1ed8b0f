# frozen_string_literal: true

# The handlers of the conditional-approval and CSV batch examples
# (core/src/examples/approval.rs and csv_batch.rs) in Ruby, written with the
# Decision and Batchable mixins.
module DynamicHandlers
  module_function

  class ValidateRequest < Tasker::StepHandler
    def call(context)
      amount = context.input("amount")
      raise Tasker::PermanentError, "the request needs an integer `amount` >= 0" unless amount.is_a?(Integer) && amount >= 0

      success(result: { "amount" => amount, "request_id" => context.input("request_id") })
    end
  end

  class RouteApproval < Tasker::StepHandler
    include Tasker::Decision

    def call(context)
      amount = context.dependency("validate_request").fetch("amount")
      auto_limit = context.config.fetch("auto_limit", 1000)
      finance_threshold = context.config.fetch("finance_threshold", 5000)
      decided =
        if amount.zero? then no_branches
        elsif amount < auto_limit then create_steps("auto_approve")
        elsif amount < finance_threshold then create_steps("manager_approval")
        else create_steps("manager_approval", "finance_approval")
        end
      decided.result["amount"] = amount
      decided
    end
  end

  def approver(name)
    Tasker::FunctionHandler.new("approval_#{name}") { |_context| { "approver" => name, "approved" => true } }
  end

  class FinalizeApproval < Tasker::StepHandler
    def call(context)
      approvals = context.dependency_results.values.select { |r| r.key?("approver") }
      success(result: {
                "approved" => approvals.all? { |r| r["approved"] == true },
                "approvals" => approvals.map { |r| r["approver"] }.sort,
                "amount" => context.dependency("route_approval").fetch("amount")
              })
    end
  end

  CSV_HEADER = "id,sku,quantity,unit_price_cents"

  # The example's CSV, as core's examples::csv_batch::generate_csv writes it.
  def generate_csv(rows)
    lines = [CSV_HEADER]
    rows.times do |i|
      lines << "#{i + 1},SKU-#{format('%03d', i % 25)},#{((i * 7) % 10) + 1},#{100 + ((i * 37) % 900)}"
    end
    lines.join("\n")
  end

  class AnalyzeCsv < Tasker::StepHandler
    include Tasker::Batchable

    def call(context)
      total = DynamicHandlers.generate_csv(Integer(context.input("rows"))).lines.size - 1
      return no_batches if total.zero?

      batches = create_batches(total) # cut by the template's batch_size
      batches.result["rows"] = total
      batches
    end
  end

  class ProcessCsvBatch < Tasker::StepHandler
    def call(context)
      first, last = context.cursor_range
      every = Integer(context.config.fetch("checkpoint_every", 0))
      saved = (context.checkpoint || {})["data"] || {}
      totals = %w[rows quantity revenue_cents].to_h { |k| [k, Integer(saved.fetch(k, 0))] }
      lines = DynamicHandlers.generate_csv(Integer(context.input("rows"))).lines.drop(1)
      (first...last).each do |i|
        _, _, quantity, price = lines[i].strip.split(",")
        totals["rows"] += 1
        totals["quantity"] += Integer(quantity)
        totals["revenue_cents"] += Integer(quantity) * Integer(price)
        context.save_checkpoint(i + 1, totals) if every.positive? && ((i + 1) % every).zero? && i + 1 < last
      end
      success(result: totals.merge("batch_id" => context.config.fetch("cursor").fetch("batch_id")))
    end
  end

  class AggregateCsv < Tasker::StepHandler
    def call(context)
      batches = context.dependency_results.values.select { |r| r.key?("batch_id") }
      totals = %w[rows quantity revenue_cents].to_h { |k| [k, batches.sum { |b| b[k] }] }
      success(result: totals.merge("batches" => batches.size))
    end
  end

  HANDLERS = {
    "approval_validate" => ValidateRequest,
    "approval_route" => RouteApproval,
    "approval_auto" => approver("auto"),
    "approval_manager" => approver("manager"),
    "approval_finance" => approver("finance"),
    "approval_finalize" => FinalizeApproval,
    "csv_analyze" => AnalyzeCsv,
    "csv_process_batch" => ProcessCsvBatch,
    "csv_aggregate" => AggregateCsv
  }.freeze
end
