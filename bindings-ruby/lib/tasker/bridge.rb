# frozen_string_literal: true

require "json"

module Tasker
  # The native contract (tasker_core::bridge) one-to-one, taking and returning Ruby
  # objects. JSON crosses the boundary as text, encoded and parsed here with
  # Ruby's `json`.
  #
  # Every call that waits releases the GVL, so other Ruby threads keep running;
  # polling and waiting for a task also stop at once when the thread is
  # interrupted (Thread#raise, Thread#kill, Ctrl-C). Errors are Tasker::Error
  # subclasses (#code names the error code).
  class Bridge
    # The options given (as sent to the core, string keys).
    attr_reader :options

    # Opens a bridge: a worker on `namespaces` (none: a client only) plus the
    # client calls. Other options (`builtin_handlers`, `wakeup_mode`,
    # `poll_interval_ms`, `max_lease_extension_ms`) pass through; unknown ones
    # raise Tasker::InvalidConfig.
    def initialize(database_url: nil, namespaces: nil, concurrency: nil, templates: nil, native: nil, **options)
      if native
        @native = native
        @options = {}
        return
      end
      opts = {}
      opts["database_url"] = database_url.to_s unless database_url.nil?
      opts["namespaces"] = Array(namespaces).map(&:to_s) unless namespaces.nil?
      opts["concurrency"] = Integer(concurrency) unless concurrency.nil?
      opts["templates"] = Array(templates).map(&:to_s) unless templates.nil?
      options.each { |k, v| opts[k.to_s] = v }
      @options = opts
      @native = Native::Bridge.open(JSON.generate(opts))
    end

    # A bridge handing out an endless supply of synthetic step events (at most
    # `concurrency` at once) and dropping their results: what the contract
    # costs, without any database work. For benchmarks.
    def self.loopback(concurrency = 64)
      new(native: Native::Bridge.loopback(Integer(concurrency)))
    end

    # The native object (methods take and return JSON text).
    attr_reader :native

    # -- worker side --------------------------------------------------------

    # Waits up to `timeout_ms` for at least one step event; at most `max_events`
    # (and never more than the free capacity). [] on timeout and while
    # draining; Tasker::WorkerClosed after shutdown.
    def poll_step_events(max_events = 1, timeout_ms = 1000)
      JSON.parse(@native.poll_step_events(Integer(max_events), Integer(timeout_ms)))
    end

    # Sends results (step_result Hashes, or JSON texts) in one batch; returns
    # the completion report {"accepted" => n, "invalid" => [...], "rejected" => [...]}.
    # A Hash that cannot be serialised is sent as an invalid_result failure of
    # its event instead of spoiling the batch.
    def complete_step_events(results)
      parts = Array(results).map do |r|
        next r if r.is_a?(String)

        problem = JsonCheck.problem(r)
        if problem
          id = r.is_a?(Hash) ? (r["event_id"] || r[:event_id]) : nil
          raise ArgumentError, "result cannot be serialised as JSON: #{problem}" unless id.is_a?(String)

          next Tasker.invalid_result_json(id, "the result cannot be serialised as JSON: #{problem}")
        end
        JSON.generate(r)
      end
      complete_step_events_json("[#{parts.join(',')}]")
    end

    # As #complete_step_events, with the JSON array already encoded.
    def complete_step_events_json(results_json)
      JSON.parse(@native.complete_step_events(results_json))
    end

    # Moves the event's deadline (within the configured bound); returns it (epoch ms).
    def extend_lease(event_id)
      @native.extend_lease(event_id.to_s)
    end

    # Hands the step back to the queue without a result (no attempt counted);
    # false when the event is not held.
    def release_step_event(event_id)
      @native.release_step_event(event_id.to_s)
    end

    # Persists a batch worker's checkpoint and extends the lease.
    def checkpoint_step(event_id, cursor, data = nil)
      @native.checkpoint_step(event_id.to_s, JSON.generate(cursor), JSON.generate(data))
      nil
    end

    # Publishes a domain event (mode: "fast", "durable" or "broadcast"). With an
    # event id (a held step event) it carries that step's identity and is delivered
    # with the step's result (a durable one in the result's transaction); a payload
    # failing the schema the step declares raises Tasker::InvalidInput. Without, a
    # durable event is stored before this returns. Returns the event.
    def publish_domain_event(name, payload, mode: "fast", event_id: nil)
      JSON.parse(@native.publish_domain_event(name.to_s, JSON.generate(payload), mode.to_s, event_id&.to_s))
    end

    # State and counters.
    def worker_status
      JSON.parse(@native.worker_status)
    end

    # Stops claiming, waits up to `grace_ms` for outstanding events' results,
    # releases the rest: {"drained" => n, "released" => n}. Idempotent.
    def shutdown(grace_ms = 30_000)
      JSON.parse(@native.shutdown(Integer(grace_ms)))
    end

    # -- client side --------------------------------------------------------

    # Creates a task; returns its view ("task_uuid", "state", "steps", ...).
    def create_task(namespace, name, context = {}, version: nil, idempotency_key: nil, correlation_id: nil)
      request = Bridge.task_request(namespace, name, context, version, idempotency_key, correlation_id)
      create_task_request(request)
    end

    # Creates a task from a task_request Hash as is.
    def create_task_request(request)
      JSON.parse(@native.create_task(JSON.generate(request)))
    end

    # The task view.
    def get_task(task_uuid)
      JSON.parse(@native.get_task(task_uuid.to_s))
    end

    # Waits until the task is finished; Tasker::WaitTimedOut when `timeout_ms`
    # runs out first.
    def wait_for_task(task_uuid, timeout_ms = 60_000)
      JSON.parse(@native.wait_for_task(task_uuid.to_s, Integer(timeout_ms)))
    end

    def inspect
      "#<Tasker::Bridge #{@options['namespaces'].inspect}>"
    end

    # A task_request Hash.
    def self.task_request(namespace, name, context, version, idempotency_key, correlation_id)
      req = { "namespace" => namespace.to_s, "name" => name.to_s, "context" => context || {} }
      req["version"] = version.to_s unless version.nil?
      req["idempotency_key"] = idempotency_key.to_s unless idempotency_key.nil?
      req["correlation_id"] = correlation_id.to_s unless correlation_id.nil?
      req
    end
  end
end
