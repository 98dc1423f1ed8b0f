# frozen_string_literal: true

# The Ruby step of the polyglot demo: reserve_inventory.

require "tasker"

module DemoHandlers
  RUNTIME = "ruby #{RUBY_VERSION}"
  WAREHOUSE = "LHR-1"
  STOCK = { "BOOK-042" => 17, "MUG-007" => 3, "PEN-100" => 250, "LAMP-003" => 0 }.freeze

  # Reserves every line of the validated order in the warehouse (the stock system
  # takes a moment); an unknown or sold-out item fails the order for good.
  RESERVE_INVENTORY = Tasker::FunctionHandler.new("reserve_inventory") do |context|
    sleep 0.2
    order = context.dependency("validate_order")
    lines = order["lines"].map do |line|
      in_stock = STOCK.fetch(line["sku"], 0)
      if line["quantity"] > in_stock
        raise Tasker::PermanentError, "#{line['sku']}: #{line['quantity']} ordered, #{in_stock} in stock"
      end

      { "sku" => line["sku"], "quantity" => line["quantity"], "left_in_stock" => in_stock - line["quantity"] }
    end
    {
      "reservation_id" => "RSV-#{order['order_id']}",
      "warehouse" => WAREHOUSE,
      "lines" => lines,
      "handled_by" => RUNTIME
    }
  end

  HANDLERS = { "reserve_inventory" => RESERVE_INVENTORY }.freeze
end
