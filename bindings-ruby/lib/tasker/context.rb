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
    attr_reader :event_id, :task_uuid, :step_uuid, :correlation_id, :namespace, :task_name, :task_version,
                :step_name, :template_step_name, :step_type, :handler_callable, :handler_method, :config,
                :context, :dependency_results, :attempt, :max_attempts, :timeout_ms, :deadline_ms, :checkpoint,
                :logger, :event

    def initialize(event, bridge = nil, logger: nil)
      handler = event.fetch("handler")
      @event = event
      @event_id = event.fetch("event_id").to_s
      @task_uuid = event.fetch("task_uuid").to_s
      @step_uuid = event.fetch("step_uuid").to_s
      @correlation_id = event.fetch("correlation_id").to_s
      @namespace = event.fetch("namespace")
      @task_name = event.fetch("task_name")
      @task_version = event.fetch("task_version", "")
      @step_name = event.fetch("step_name")
      @template_step_name = event.fetch("template_step_name", @step_name)
      @step_type = event.fetch("step_type", "standard")
      @handler_callable = handler.fetch("callable")
      @handler_method = handler["method"] || "call"
      init = handler["initialization"]
      @config = if init.is_a?(Hash) then init
                elsif init.nil? then {}
                else { "value" => init }
                end
      @context = event["context"] || {}
      @dependency_results = event["dependency_results"] || {}
      @attempt = Integer(event.fetch("attempt"))
      @max_attempts = Integer(event.fetch("max_attempts"))
      @retryable = event.fetch("retryable", true) ? true : false
      @timeout_ms = Integer(event.fetch("timeout_ms", 0))
      @deadline_ms = Integer(event.fetch("deadline_ms", 0))
      @checkpoint = event["checkpoint"]
      @bridge = bridge
      @logger = StepLogger.new(logger, correlation_id: @correlation_id, step_name: @step_name,
                                       task_uuid: @task_uuid)
    end

    # -- reading ------------------------------------------------------------

    # Whether the template allows retrying this step at all.
    def retryable?
      @retryable
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
      return default unless context.is_a?(Hash)

      context.fetch(key.to_s) { context.fetch(key, default) }
    end

    # The result of parent step `name` (nil when there is no such parent).
    def dependency(name)
      dependency_results[name.to_s]
    end

    # A batch worker's cursor range [start, end] (0-based, end-exclusive), read
    # from its configuration (config["cursor"] or config itself, holding
    # start_cursor / end_cursor as Batchable#create_batches produces them).
    # After a checkpoint, start is the checkpoint's cursor (resume there).
    def cursor_range
      spec = config.fetch("cursor", config)
      unless spec.is_a?(Hash) && spec.key?("start_cursor") && spec.key?("end_cursor")
        raise KeyError, "step #{step_name.inspect} has no cursor range (expected start_cursor/end_cursor " \
                        "in its configuration)"
      end

      first = Integer(spec["start_cursor"])
      last = Integer(spec["end_cursor"])
      cursor = checkpoint.is_a?(Hash) ? checkpoint["cursor"] : nil
      first = [first, cursor].max if cursor.is_a?(Integer)
      [first, last]
    end

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
