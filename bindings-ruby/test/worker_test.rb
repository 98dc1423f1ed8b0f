# frozen_string_literal: true

require_relative "test_helper"

# Tasker::Worker: capacity, batching, status, logging.
class WorkerTest < Minitest::Test
  include TestSupport

  # Counts the calls a worker makes on its bridge.
  class CountingBridge < SimpleDelegator
    attr_reader :polls, :completes, :max_polled

    def initialize(bridge)
      super
      @polls = 0
      @completes = 0
      @max_polled = 0
    end

    def poll_step_events(max_events, timeout_ms)
      @polls += 1
      __getobj__.poll_step_events(max_events, timeout_ms).tap { |e| @max_polled = [@max_polled, e.size].max }
    end

    def complete_step_events_json(json)
      @completes += 1
      __getobj__.complete_step_events_json(json)
    end
  end

  def test_never_runs_more_than_concurrency_handlers
    running = 0
    peak = 0
    lock = Mutex.new
    handler = Tasker::FunctionHandler.new("noop") do
      lock.synchronize { peak = [peak, running += 1].max }
      sleep 0.1
      lock.synchronize { running -= 1 }
      nil
    end
    with_db(:sqlite) do |url|
      bridge = CountingBridge.new(
        Tasker::Bridge.new(database_url: url, namespaces: ["rbtests"], concurrency: 3, templates: [TEMPLATES_DIR])
      )
      worker = Tasker::Worker.new(namespaces: ["rbtests"], handlers: [handler], concurrency: 3, bridge: bridge)
      tasks = Array.new(12) { bridge.create_task("rbtests", "noop", {}) }
      worker.start
      status_peak = 0
      done = tasks.map do |t|
        status_peak = [status_peak, bridge.worker_status["outstanding"]].max
        bridge.wait_for_task(t["task_uuid"], 30_000)
      end
      assert(done.all? { |t| t["state"] == "complete" })
      assert_equal 3, peak, "three handlers ran at once, never more"
      assert_operator bridge.max_polled, :<=, 3
      assert_operator status_peak, :<=, 3
      assert_operator bridge.completes, :<=, 12
      assert_kind_of Integer, worker.status["ruby_in_flight"]
      worker.stop
      assert_equal 0, worker.in_flight
    end
  end

  def test_core_log_records_reach_the_logger
    log = StringIO.new
    previous = Tasker.logger
    Tasker.logger = Logger.new(log, level: Logger::INFO)
    failing = Tasker::FunctionHandler.new("fail_as") { raise Tasker::PermanentError, "logged failure" }
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: [failing]) do |engine|
        engine.run("rbtests", "failure", {}, timeout: 30)
      end
    end
    text = log.string
    assert_match(/INFO -- tasker\.core: tasker_core::worker::handler_dispatch: attempt failed: logged failure/, text)
    assert_match(/error_type=PermanentError\b/, text)
    assert_match(/tasker\.worker: stopped/, text)
  ensure
    Tasker.logger = previous
  end

  def test_log_records_can_be_drained_directly
    Tasker::Logging.drain # whatever earlier tests left
    with_db(:sqlite) do |url|
      # No worker here (its poller would drain the records first): the test
      # plays the worker through the bridge.
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["rbtests"], templates: [TEMPLATES_DIR])
      task = bridge.create_task("rbtests", "failure", {})
      event = poll_events(bridge, 1).first
      bridge.complete_step_events([JSON.parse(Tasker.encode_result(event["event_id"],
                                                                   Tasker.failure(message: "drained directly",
                                                                                  retryable: false)))])
      bridge.wait_for_task(task["task_uuid"], 10_000)
      records = Tasker.drain_log_records(10_000)
      hit = records.find { |r| r["message"].include?("drained directly") }
      refute_nil hit, records.map { |r| r["message"] }.inspect
      assert_equal "info", hit["level"]
      assert_kind_of Integer, hit["timestamp_ms"]
      assert_equal task["task_uuid"], hit["fields"]["task_uuid"]
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_a_handler_may_stop_its_own_worker
    with_db(:sqlite) do |url|
      worker = nil
      stopper = Tasker::FunctionHandler.new("noop") do
        worker.stop
        { "stopping" => true }
      end
      worker = Tasker::Worker.new(database_url: url, namespaces: ["rbtests"], handlers: [stopper],
                                  templates: [TEMPLATES_DIR])
      task = worker.bridge.create_task("rbtests", "noop", {})
      t = Thread.new { worker.run }
      assert t.join(20), "run returned"
      assert worker.stopped?
      assert_equal({ "drained" => 1, "released" => 0 }, worker.drain_report)
      Tasker::Client.open(database_url: url) do |client|
        assert_equal "complete", client.get_task(task["task_uuid"])["state"]
      end
    end
  end

  def test_options
    assert_raises(ArgumentError) { Tasker::Worker.new(database_url: "sqlite:///tmp/x.db", concurrency: 0) }
  end
end
