# frozen_string_literal: true

# The Ruby conformance handlers. Each callable does exactly what its Rust, Python
# and TypeScript twins do (the table in tests-crosslang/README.md); failures use
# the idiomatic Ruby way (raising Tasker::PermanentError, Tasker::RetryableError or
# any exception, or returning Tasker.failure(...)) so the suite checks the gem's
# failure table too. The decision and batchable handlers are classes using the
# gem's Decision and Batchable mixins.

require "digest"
require "tasker"

module ConformanceHandlers
  LANGUAGE = "ruby"
  BLOB_UNIT = "0123456789abcdef"

  # An application exception the handlers do not catch.
  class InventoryServiceDown < StandardError; end

  # What a batch worker raises to fail mid-range.
  class SimulatedCrash < StandardError; end

  # Creates the branches the context's "branches" names, or none.
  class RouteBranches < Tasker::StepHandler
    include Tasker::Decision
    handler_name "route_branches"

    def call(context)
      names = context.input("branches") || []
      names.empty? ? no_branches : create_steps(names)
    end
  end

  # Batches over the context's "items", of its "batch_size" when given (else the
  # engine cuts them); none when there are no items.
  class SplitItems < Tasker::StepHandler
    include Tasker::Batchable
    handler_name "split_items"

    def call(context)
      items = context.input("items", 0)
      items.zero? ? no_batches : create_batches(items, context.input("batch_size"))
    end
  end

  module_function

  # Adds up the item numbers of its cursor range, from the last checkpoint's
  # cursor and sum on (unless `resume` is false); saves {cursor: next item, data:
  # {sum}} after every "checkpoint_every" items; on attempt 1, fails just before
  # item "fail_once_at" of the context.
  def sum_range(context, resume:)
    first, last = context.cursor_range
    checkpoint = context.checkpoint
    if !resume && checkpoint
      first = context.config["cursor"]["start_cursor"]
      checkpoint = nil
    end
    every = context.config.fetch("checkpoint_every", 0)
    fail_at = context.input("fail_once_at")
    sum = checkpoint ? checkpoint["data"]["sum"] : 0
    processed = []
    (first...last).each do |i|
      raise SimulatedCrash, "simulated crash before item #{i}" if context.attempt == 1 && i == fail_at

      sum += i
      processed << i
      context.save_checkpoint(i + 1, { "sum" => sum }) if every.positive? && ((i + 1) % every).zero? && i + 1 < last
    end
    { "batch_id" => context.config["cursor"]["batch_id"],
      "resumed_from" => checkpoint ? checkpoint["cursor"] : nil, "processed" => processed, "sum" => sum }
  end

  # Publishes each {name, mode, payload} of the "events" setting with the step's
  # result (every one as `force_mode` in the broken variant).
  def publish_events(context, force_mode: nil)
    events = context.config["events"] || []
    events.each { |e| context.publish(e["name"], e["payload"], mode: force_mode || e["mode"]) }
    { "published" => events.size }
  end

  # The single parent's "value", else the context's "n".
  def input_value(context)
    parent = context.dependency_results.values.first
    parent ? parent["value"] : context.input("n")
  end

  def digest(value)
    return nil unless value.is_a?(String)

    { "bytes" => value.bytesize, "sha256" => Digest::SHA256.hexdigest(value) }
  end

  def handler(name, &block)
    Tasker::FunctionHandler.new(name, &block)
  end

  HANDLERS = [
    handler("square") do |context|
      n = input_value(context)
      { "value" => n * n }
    end,
    handler("multiply_square") do |context|
      product = context.dependency_results.values.reduce(1) { |acc, p| acc * p["value"] }
      { "value" => product * product }
    end,
    handler("sum") do |context|
      { "value" => context.dependency_results.values.sum { |p| p["value"] } }
    end,
    handler("flaky_square") do |context|
      if context.attempt < 3
        Tasker.failure(message: "simulated failure on attempt #{context.attempt}", error_type: "flaky")
      else
        n = input_value(context)
        { "value" => n * n }
      end
    end,
    handler("decline_card") do |_context|
      raise Tasker::PermanentError, "card ending 4242 was declined"
    end,
    handler("upstream_unavailable") do |context|
      Tasker.failure(message: "inventory service unavailable on attempt #{context.attempt}",
                     error_type: "upstream_unavailable")
    end,
    handler("retry_after_once") do |context|
      ms = context.config["retry_after_ms"]
      raise Tasker::RetryableError.new("rate limited: retry after #{ms} ms", retry_after: ms / 1000.0) if context.attempt == 1

      { "attempt" => context.attempt }
    end,
    handler("always_slow") do |context|
      sleep(context.config["sleep_ms"] / 1000.0)
      { "attempt" => context.attempt }
    end,
    handler("return_nan") do |_context|
      { "ratio" => Float::NAN }
    end,
    handler("raise_unexpected") do |_context|
      raise InventoryServiceDown, "warehouse 7 unreachable: 倉庫 ✗"
    end,
    handler("echo_text") do |context|
      text = context.input("text")
      { "text" => text, "code_points" => text.length, "utf8_bytes" => text.bytesize, "labels" => context.input("labels") }
    end,
    handler("make_blob") do |context|
      blob = BLOB_UNIT * (context.config["kib"] * 64)
      { "bytes" => blob.bytesize, "blob" => blob }
    end,
    handler("digest_blobs") do |context|
      parent = context.dependency_results.values.first || {}
      { "parent" => digest(parent["blob"]), "context" => digest(context.input("blob")) }
    end,
    handler("constant") do |context|
      context.config["value"]
    end,
    handler("publish_events") do |context|
      publish_events(context)
    end,
    handler("collect") do |context|
      { "received" => context.dependency_results }
    end,
    handler("relay") do |context|
      parent = context.dependency_results.values.first
      visited = parent ? parent["visited"] + [context.step_name] : [context.step_name]
      Tasker.success({ "value" => input_value(context) * 2, "visited" => visited }, metadata: { "language" => LANGUAGE })
    end,
    RouteBranches,
    SplitItems,
    handler("sum_range") do |context|
      sum_range(context, resume: true)
    end
  ].freeze

  # Deliberately wrong variants, swapped in by `worker.rb --break CALLABLE` to show
  # that the suite catches a handler that drifts from the others.
  BROKEN = {
    "square" => handler("square") do |context|
      n = input_value(context)
      { "value" => n * n + 1 } # off by one
    end,
    "sum_range" => handler("sum_range") do |context|
      sum_range(context, resume: false) # starts its range over on a retry
    end,
    "publish_events" => handler("publish_events") do |context|
      publish_events(context, force_mode: "fast") # every event fast, none stored
    end
  }.freeze
end
