# frozen_string_literal: true

require "yaml"

module Tasker
  # Raised by Engine#run(..., check: true) when the task did not complete.
  class TaskFailed < StandardError
    attr_reader :task

    def initialize(task)
      @task = task
      failed = (task["steps"] || []).select { |s| s["error"] }
      detail = failed.map { |s| "#{s['name']}: #{s.dig('error', 'message')}" }.join("; ")
      super("task #{task['task_uuid']} ended in #{task['state']}#{detail.empty? ? '' : " (#{detail})"}")
    end
  end

  # States in which a task is finished (wait_for_task returns).
  FINISHED_STATES = %w[complete error cancelled resolved_manually blocked_by_failures].freeze

  # Helpers shared by Engine and Client.
  module TaskCalls
    # Creates a task; returns its view ("task_uuid", "state", "steps", ...).
    def create_task(namespace, name, context = {}, version: nil, idempotency_key: nil, correlation_id: nil)
      logged do
        bridge.create_task(namespace, name, context, version: version, idempotency_key: idempotency_key,
                                                     correlation_id: correlation_id)
      end
    end

    # The task view.
    def get_task(task_uuid)
      logged { bridge.get_task(task_uuid) }
    end

    # Waits until the task is finished (Tasker::WaitTimedOut after `timeout_ms`).
    def wait_for_task(task_uuid, timeout_ms = 60_000)
      logged { bridge.wait_for_task(task_uuid, timeout_ms) }
    end

    private

    def logged
      yield
    ensure
      Logging.drain
    end
  end

  # Creates and reads tasks; the steps run in workers elsewhere (other
  # processes or machines sharing the database). Templates come from the
  # database (registered by `tasker orchestrator` or an engine) or from `templates`.
  class Client
    include TaskCalls

    attr_reader :bridge

    def initialize(database_url: nil, templates: nil, log_level: nil, **options)
      url = database_url || ENV["TASKER_DATABASE_URL"]
      raise ArgumentError, "pass database_url: (sqlite://PATH or postgres://...) or set TASKER_DATABASE_URL" unless url

      Logging.install(log_level)
      @bridge = Bridge.new(database_url: url, templates: templates, **options)
    end

    # Closes the connection pool.
    def close
      @bridge.shutdown(0)
      nil
    rescue WorkerClosed
      nil
    end

    # Client.open(...) { |client| ... } closes it at the end.
    def self.open(**options)
      client = new(**options)
      return client unless block_given?

      begin
        yield client
      ensure
        client.close
      end
    end
  end

  # Orchestration plus a Ruby worker in this process, on SQLite by default
  # (sqlite://tasker.db) or PostgreSQL.
  #
  #   engine = Tasker::Engine.new(templates: ["templates"], handlers: [Square])
  #   task = engine.run("examples", "linear", { "n" => 6 })
  #   engine.close
  #
  # `templates`: YAML files or folders (registered in the database at start).
  # `namespaces`: served by the worker; by default every namespace the templates
  # declare, their steps' own included.
  class Engine
    include TaskCalls

    attr_reader :bridge, :worker, :namespaces

    def initialize(database_url: nil, templates: [], handlers: nil, concurrency: 8, namespaces: nil,
                   poll_timeout_ms: 200, shutdown_grace_ms: 30_000, log_level: nil, interrupt_overdue: true,
                   **options)
      url = database_url || ENV["TASKER_DATABASE_URL"] || "sqlite://tasker.db"
      paths = Array(templates).map(&:to_s)
      @namespaces = namespaces.nil? ? Engine.template_namespaces(paths) : Array(namespaces).map(&:to_s)
      Logging.install(log_level)
      @bridge = Bridge.new(database_url: url, namespaces: @namespaces, concurrency: concurrency, templates: paths,
                           **options)
      @worker = Worker.new(namespaces: @namespaces, handlers: handlers, concurrency: concurrency,
                           poll_timeout_ms: poll_timeout_ms, shutdown_grace_ms: shutdown_grace_ms,
                           interrupt_overdue: interrupt_overdue, bridge: @bridge)
    end

    # Engine.open(...) { |engine| ... } closes it (with a drain) at the end.
    def self.open(**options)
      engine = new(**options)
      return engine unless block_given?

      begin
        engine.start
        yield engine
      ensure
        engine.close
      end
    end

    # Starts the worker threads (nothing to do when no namespace is served).
    def start
      @worker.start unless @namespaces.empty?
      self
    end

    # Stops the worker (drains: running handlers finish within the grace
    # period, the rest is handed back) and closes the engine. Returns the drain report.
    def close
      @worker.stop
      (@worker.drain_report || {}).dup
    end
    alias stop close

    # Creates a task, waits until it is finished (at most `timeout` seconds),
    # and returns the final task view. With `check: true`, raises
    # Tasker::TaskFailed unless it completed.
    def run(namespace, name, context = {}, timeout: 60, version: nil, idempotency_key: nil, check: false)
      start
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      task = create_task(namespace, name, context, version: version, idempotency_key: idempotency_key)
      unless FINISHED_STATES.include?(task["state"])
        left_ms = [((deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)) * 1000).to_i, 1].max
        task = wait_for_task(task["task_uuid"], left_ms)
      end
      raise TaskFailed, task if check && task["state"] != "complete"

      task
    end

    # Namespaces the templates' steps run in (YAML files under the given files and
    # folders): each template's namespace and the steps' own (steps[].namespace).
    def self.template_namespaces(paths)
      files = paths.flat_map do |p|
        if File.directory?(p)
          Dir.glob(File.join(p, "**", "*.{yaml,yml}")).sort
        elsif File.file?(p)
          [p]
        else
          []
        end
      end
      files.flat_map do |f|
        doc = YAML.safe_load(File.read(f, encoding: "UTF-8"), aliases: true)
        next [] unless doc.is_a?(Hash)

        steps = doc["steps"].is_a?(Array) ? doc["steps"] : []
        [doc["namespace"], *steps.map { |s| s["namespace"] if s.is_a?(Hash) }].compact.map(&:to_s)
      rescue StandardError, Psych::Exception
        File.read(f).scan(/(?:^|[{,])[ \t]*(?:-[ \t]+)?namespace:[ \t]*["']?([^"'\s#,}]+)/).flatten
      end.uniq
    end
  end
end
