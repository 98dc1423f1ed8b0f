# frozen_string_literal: true

require "logger"

module Tasker
  # A logger for one step: every message goes to Tasker.logger (or the logger
  # given) prefixed with the step's correlation id, step name and task.
  class StepLogger
    attr_reader :prefix

    def initialize(logger, correlation_id:, step_name:, task_uuid:)
      @logger = logger
      @prefix = "[correlation_id=#{correlation_id} step=#{step_name} task=#{task_uuid}]"
    end

    %i[debug info warn error fatal unknown].each do |name|
      severity = Logger.const_get(name.upcase)
      define_method(name) do |message = nil, &block|
        add(severity, message, &block)
      end
      define_method(:"#{name}?") { logger.send(:"#{name}?") }
    end

    # As Logger#add, with the prefix.
    def add(severity, message = nil, progname = nil, &block)
      log = logger
      return true if severity < log.level

      message = block.call if message.nil? && block
      message = progname if message.nil?
      log.add(severity, "#{@prefix} #{message}", "tasker.handler")
    end
    alias log add

    def level
      logger.level
    end

    private

    def logger
      @logger || Tasker.logger
    end
  end

  # One attempt of one step, as its handler sees it; built from a step_event
  # (proto-contract). `context` is the task's input, `dependency_results` the
  # parents' results by step name, `config` the template's handler.initialization.
  # Hashes hold string keys, as parsed from JSON.
  class StepContext
    # The step_event as received.
    attr_reader :event, :event_id, :checkpoint, :deadline_ms

    def initialize(event, bridge = nil, logger: nil)
      @event = event
      @event_id = event.fetch("event_id").to_s
      @handler = event.fetch("handler")
      @checkpoint = event["checkpoint"]
      @deadline_ms = event.fetch("deadline_ms", 0)
      @bridge = bridge
      @base_logger = logger
    end

    def task_uuid = @event.fetch("task_uuid")
    def step_uuid = @event.fetch("step_uuid")
    def correlation_id = @event.fetch("correlation_id")
    def namespace = @event.fetch("namespace")
    def task_name = @event.fetch("task_name")
    def task_version = @event.fetch("task_version", "")
    def step_name = @event.fetch("step_name")
    def template_step_name = @event.fetch("template_step_name") { step_name }
    def step_type = @event.fetch("step_type", "standard")
    # The template's handler.callable.
    def handler_callable = @handler.fetch("callable")
    # The template's handler.method ("call" by default).
    def handler_method = @handler["method"] || "call"
    # This attempt's number (1 for the first).
    def attempt = @event.fetch("attempt")
    # Attempts allowed (counting the first).
    def max_attempts = @event.fetch("max_attempts")
    # The step's timeout (ms): deadline_ms is its claim plus this.
    def timeout_ms = @event.fetch("timeout_ms", 0)

    # The task's context (its input), a Hash.
    def context
      @event["context"] || {}
    end

    # The parents' results by step name.
    def dependency_results
      @event["dependency_results"] || {}
    end

    # The template's handler.initialization (a Hash; a scalar is {"value" => it}).
    def config
      @config ||= begin
        init = @handler["initialization"]
        if init.is_a?(Hash) then init
        elsif init.nil? then {}
        else { "value" => init }
        end
      end
    end

    # A logger adding this step's correlation id, step name and task to each message.
    def logger
      @logger ||= StepLogger.new(@base_logger, correlation_id: correlation_id, step_name: step_name,
                                               task_uuid: task_uuid)
    end

    # -- reading ------------------------------------------------------------

    # Whether the template allows retrying this step at all.
    def retryable?
      @event.fetch("retryable", true) ? true : false
    end

    # True from the second attempt on.
    def retry?
      attempt > 1
    end

    # True when a failure of this attempt will not be retried for lack of attempts.
    def last_attempt?
      attempt >= max_attempts
    end

    # Milliseconds left before this attempt's deadline (may be negative).
    def remaining_ms
      deadline_ms - Tasker.now_ms
    end

    # A field of the task context (string or symbol key), or `default`.
    def input(key, default = nil)
      ctx = context
      return default unless ctx.is_a?(Hash)

      ctx.fetch(key.to_s) { ctx.fetch(key, default) }
    end

    # The result of parent step `name` (nil when there is no such parent).
    def dependency(name)
      dependency_results[name.to_s]
    end

    # A batch worker's cursor range [start, end] (0-based, end-exclusive): from
    # its configuration (config["cursor"], where the engine puts it, or config
    # itself, holding start_cursor / end_cursor), else from the analyzer's
    # batch_processing_outcome among the dependency results (the cursor_configs
    # entry whose batch_id ends this step's name: process_batch_002 made from
    # process_batch is batch "002"). After a checkpoint whose cursor is an
    # Integer, start is that cursor (resume there), never past end.
    def cursor_range
      spec = cursor_spec
      if spec.nil?
        raise KeyError, "step #{step_name.inspect} has no cursor range: no start_cursor/end_cursor in its " \
                        "configuration and no batch_processing_outcome among its dependency results names its batch"
      end

      first = Integer(spec["start_cursor"])
      last = Integer(spec["end_cursor"])
      cursor = checkpoint.is_a?(Hash) ? checkpoint["cursor"] : nil
      first = cursor.clamp(first, last) if cursor.is_a?(Integer)
      [first, last]
    end

        def cursor_spec
      [config["cursor"], config].each do |own|
        return own if own.is_a?(Hash) && own.key?("start_cursor") && own.key?("end_cursor")
      end
      prefix = "#{template_step_name}_"
      return nil unless step_name.start_with?(prefix)

      batch_id = step_name.delete_prefix(prefix)
      dependency_results.each_value do |result|
        outcome = result.is_a?(Hash) ? result["batch_processing_outcome"] : nil
        next unless outcome.is_a?(Hash) && outcome["type"] == "create_batches"

        found = Array(outcome["cursor_configs"]).find { |c| c.is_a?(Hash) && c["batch_id"].to_s == batch_id }
        return found if found
      end
      nil
    end
    private :cursor_spec

    # -- acting -------------------------------------------------------------

    # Persists a checkpoint (and extends the lease). A retried attempt sees the
    # last one as #checkpoint.
    def save_checkpoint(cursor, data = nil)
      require_bridge.checkpoint_step(event_id, cursor, data)
      @checkpoint = { "cursor" => cursor, "data" => data, "saved_at_ms" => Tasker.now_ms }
      nil
    end

    # Moves this attempt's deadline further (within the configured bound);
    # returns the new deadline (epoch ms).
    def extend_lease
      @deadline_ms = Integer(require_bridge.extend_lease(event_id))
    end

    # Publishes a domain event about this step (mode: "fast", "durable" or
    # "broadcast"); returns the event.
    def publish(name, payload, mode: "fast")
      require_bridge.publish_domain_event(name, payload, mode: mode, event_id: event_id)
    end

    def inspect
      "#<Tasker::StepContext #{step_name} task=#{task_uuid} attempt=#{attempt}/#{max_attempts}>"
    end

    private

    def require_bridge
      @bridge or raise "this context is not attached to a worker"
    end
  end

  # Epoch milliseconds.
  def self.now_ms
    Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
  end
end
