# frozen_string_literal: true

# The example handlers (core/src/examples/mod.rs) in Ruby, in two styles: classes
# and blocks. Values are integers {"value" => N}.
module ExampleHandlers
  module_function

  # The one input of a step: its dependency's value, or the context's n.
  def single_input(context)
    deps = context.dependency_results
    if deps.empty?
      n = context.input("n")
      raise Tasker::PermanentError, "context needs an integer `n`" unless n.is_a?(Integer)

      return n
    end
    raise Tasker::PermanentError, "expected at most one dependency, got #{deps.size}" if deps.size != 1

    Integer(deps.values.first.fetch("value"))
  end

  def values(context)
    context.dependency_results.values.map { |r| Integer(r.fetch("value")) }
  end

  class Square < Tasker::StepHandler
    def call(context)
      n = ExampleHandlers.single_input(context)
      success(result: { "value" => n * n })
    end
  end

  class MultiplySquare < Tasker::StepHandler
    def call(context)
      p = ExampleHandlers.values(context).reduce(1, :*)
      success(result: { "value" => p * p })
    end
  end

  class Sum < Tasker::StepHandler
    def call(context)
      success(result: { "value" => ExampleHandlers.values(context).sum })
    end
  end

  class FlakySquare < Tasker::StepHandler
    def call(context)
      if context.attempt < 3
        return failure(message: "simulated failure on attempt #{context.attempt}", error_type: "flaky")
      end

      n = ExampleHandlers.single_input(context)
      success(result: { "value" => n * n })
    end
  end

  CLASSES = {
    "square" => Square, "multiply_square" => MultiplySquare, "sum" => Sum, "flaky_square" => FlakySquare
  }.freeze

  # Block handlers, built without the process-wide registration (so tests do
  # not leak handlers into each other).
  BLOCKS = [
    Tasker::FunctionHandler.new("square") do |context|
      n = ExampleHandlers.single_input(context)
      { "value" => n * n }
    end,
    Tasker::FunctionHandler.new("multiply_square") do |context|
      p = ExampleHandlers.values(context).reduce(1, :*)
      { "value" => p * p }
    end,
    Tasker::FunctionHandler.new("sum") { |context| { "value" => ExampleHandlers.values(context).sum } },
    Tasker::FunctionHandler.new("flaky_square") do |context|
      raise Tasker::RetryableError, "simulated failure on attempt #{context.attempt}" if context.attempt < 3

      n = ExampleHandlers.single_input(context)
      { "value" => n * n }
    end
  ].freeze
end
