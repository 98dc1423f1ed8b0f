# frozen_string_literal: true

require_relative "test_helper"

class CardDeclined < Tasker::PermanentError
end

class Throttled < Tasker::RetryableError
end

# The failure table (proto-contract/README.md) for Ruby handlers, end to end.
class FailuresTest < Minitest::Test
  include TestSupport
  extend BackendTests

  # Fails the way the task context's "mode" says.
  class FailAs < Tasker::StepHandler
    def call(context)
      case context.input("mode")
      when "permanent" then raise CardDeclined.new("card declined", code: "E42", metadata: { "card" => "visa" })
      when "retryable" then raise Throttled, "try later (attempt #{context.attempt})"
      when "uncaught" then success(result: { "ratio" => helper_that_divides(context.attempt) })
      when "returned" then failure(message: "upstream said no", error_type: "upstream_refused")
      when "returned_permanent"
        failure(message: "bad input", error_type: "validation", retryable: false, code: "V1", retry_after: 5)
      end
    end

    def helper_that_divides(n)
      n / 0
    end
  end

  MODES = %w[permanent retryable uncaught returned returned_permanent].freeze

  backend_test("failure_table") do |url|
    Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "fail_as" => FailAs },
                        concurrency: 4) do |engine|
      created = MODES.to_h { |mode| [mode, engine.create_task("rbtests", "failure", { "mode" => mode })] }
      tasks = created.transform_values { |t| engine.wait_for_task(t["task_uuid"], 60_000) }
      tasks.each_value { |t| assert_equal "error", t["state"] }
      steps = tasks.transform_values { |t| step(t, "failing") }

      permanent = steps["permanent"]
      assert_equal "error", permanent["state"]
      assert_equal 1, permanent["attempts"], "a PermanentError is not retried"
      assert_equal "CardDeclined", permanent["error"]["error_type"]
      assert_equal false, permanent["error"]["retryable"]
      assert_equal "card declined", permanent["error"]["message"]
      assert_equal "E42", permanent["error"]["code"]

      retryable = steps["retryable"]
      assert_equal 3, retryable["attempts"], "a RetryableError is retried up to max_attempts"
      assert_equal "Throttled", retryable["error"]["error_type"]
      assert_equal true, retryable["error"]["retryable"]
      assert_equal "try later (attempt 3)", retryable["error"]["message"]

      uncaught = steps["uncaught"]
      assert_equal 3, uncaught["attempts"]
      err = uncaught["error"]
      assert_equal "ZeroDivisionError", err["error_type"]
      assert_equal true, err["retryable"]
      assert_equal "divided by 0", err["message"]
      assert_match(/\AZeroDivisionError: divided by 0\n/, err["backtrace"])
      assert_includes err["backtrace"], "helper_that_divides"
      assert_includes err["backtrace"], "failures_test.rb"

      returned = steps["returned"]
      assert_equal 3, returned["attempts"], "failure() without retryable: is retryable"
      assert_equal "upstream_refused", returned["error"]["error_type"]
      assert_equal true, returned["error"]["retryable"]
      assert_nil returned["error"]["backtrace"]

      returned_permanent = steps["returned_permanent"]
      assert_equal 1, returned_permanent["attempts"]
      assert_equal "validation", returned_permanent["error"]["error_type"]
      assert_equal "V1", returned_permanent["error"]["code"]
      assert_equal false, returned_permanent["error"]["retryable"]
      assert_nil returned_permanent["error"]["retry_after_ms"], "a permanent failure drops retry_after"
    end
  end

  def test_an_exception_from_a_block_handler
    block = Tasker::FunctionHandler.new("fail_as") { raise ArgumentError, "from a block" }
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: [block]) do |engine|
        s = step(engine.run("rbtests", "failure", {}, timeout: 30), "failing")
        assert_equal 3, s["attempts"]
        assert_equal "ArgumentError", s["error"]["error_type"]
        assert_equal "from a block", s["error"]["message"]
      end
    end
  end

  class ClassReturningHash < Tasker::StepHandler
    def call(_context)
      { "value" => 1 }
    end
  end

  INVALID_HANDLERS = {
    "unserialisable_result" => Tasker::FunctionHandler.new("u") { { "when" => Time.now } },
    "nan_result" => Tasker::FunctionHandler.new("n") { { "value" => Float::NAN } },
    "broken_utf8_result" => Tasker::FunctionHandler.new("b") { { "text" => (+"caf\xC3").force_encoding("UTF-8") } },
    "class_returning_hash" => ClassReturningHash,
    "healthy" => Tasker::FunctionHandler.new("h") { { "ok" => true } }
  }.freeze

  def test_invalid_results_fail_the_step_without_crashing
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: INVALID_HANDLERS,
                          concurrency: 4) do |engine|
        task = engine.run("rbtests", "invalid_results", {}, timeout: 60)
        # The worker is still alive: it runs another task.
        again = engine.run("rbtests", "invalid_results", {}, timeout: 60)
        [task, again].each do |t|
          assert_equal "error", t["state"]
          assert_equal "complete", step(t, "healthy")["state"]
          %w[unserialisable not_a_number broken_utf8 hash_from_class].each do |name|
            s = step(t, name)
            assert_equal "error", s["state"], s.inspect
            assert_equal 1, s["attempts"], "invalid_result is not retried (#{name})"
            assert_equal "invalid_result", s["error"]["error_type"]
            assert_equal false, s["error"]["retryable"]
          end
        end
        assert_match(/Time at \$\.result\.when is not JSON data/, step(task, "unserialisable")["error"]["message"])
        assert_match(/NaN/, step(task, "not_a_number")["error"]["message"])
        assert_match(/UTF-8/, step(task, "broken_utf8")["error"]["message"])
        assert_match(/handler returned Hash, expected a Tasker::StepResult/,
                     step(task, "hash_from_class")["error"]["message"])
      end
    end
  end

  def run_sleeper(interrupt_overdue)
    events = Thread::Queue.new
    sleeper = Tasker::FunctionHandler.new("sleeper") do |context|
      events << [:started, monotonic]
      begin
        sleep context.config["seconds"]
        events << [:finished, monotonic]
      ensure
        events << [:left, monotonic]
      end
      { "slept" => true }
    end
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "sleeper" => sleeper },
                          interrupt_overdue: interrupt_overdue) do |engine|
        t0 = monotonic
        task = engine.run("rbtests", "timeouts", {}, timeout: 30)
        took = monotonic - t0
        assert_equal "error", task["state"]
        assert_operator took, :<, 2.5, "the timeout did not wait for the handler (#{took.round(2)} s)"
        s = step(task, "sleeper")
        assert_equal "timeout", s["error"]["error_type"], s.inspect
        assert_equal true, s["error"]["retryable"]
        assert_equal 1, s["attempts"]
        seen = []
        deadline = monotonic + 5
        seen << events.pop until seen.any? { |kind, _| kind == :left } || monotonic > deadline
        started = seen.assoc(:started)[1]
        left = seen.assoc(:left)[1]
        yield seen, left - started
        # A late result changed nothing.
        sleep 0.2
        assert_equal "error", step(engine.get_task(task["task_uuid"]), "sleeper")["state"]
      end
    end
  end

  def test_a_handler_past_its_timeout_fails_as_timeout_and_is_interrupted
    run_sleeper(true) do |seen, ran_for|
      assert_nil seen.assoc(:finished), "the handler was interrupted, not run to its end"
      assert_operator ran_for, :<, 2.0, "interrupted shortly after the 1 s deadline (ran #{ran_for.round(2)} s)"
      assert_operator ran_for, :>=, 1.0
    end
  end

  def test_a_handler_past_its_timeout_may_run_to_its_end
    run_sleeper(false) do |seen, ran_for|
      refute_nil seen.assoc(:finished), "interrupt_overdue: false lets the handler finish"
      assert_operator ran_for, :>=, 2.9
    end
  end

  backend_test("retry_after_is_honoured") do |url|
    times = Hash.new { |h, k| h[k] = [] }
    throttled = Tasker::FunctionHandler.new("throttled") do |context|
      times[context.attempt] << Tasker.now_ms
      raise Tasker::RetryableError.new("slow down", retry_after: 1.5) if context.attempt == 1

      { "attempt" => context.attempt }
    end
    Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "throttled" => throttled }) do |eng|
      task = eng.run("rbtests", "retry_after", {}, timeout: 30)
      assert_equal "complete", task["state"], task.inspect
      s = step(task, "throttled")
      assert_equal 2, s["attempts"]
      gap = times[2].first - times[1].first
      assert_operator gap, :>=, 1500 - 5, "attempt 2 came #{gap} ms after attempt 1"
      # The recorded timestamps say the same: completion no earlier than the hint.
      assert_operator s["completed_at"] - times[1].first, :>=, 1500 - 5
      assert_operator s["completed_at"] - task["created_at"], :>=, 1500 - 5
    end
  end

  def test_returned_failure_with_retry_after
    times = []
    handler = Tasker::FunctionHandler.new("throttled") do |context|
      times << Tasker.now_ms
      next Tasker.failure(message: "busy", error_type: "busy", retry_after: 1) if context.attempt == 1

      { "ok" => true }
    end
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "throttled" => handler }) do |eng|
        task = eng.run("rbtests", "retry_after", {}, timeout: 30)
        assert_equal "complete", task["state"]
        assert_operator times[1] - times[0], :>=, 1000 - 5
      end
    end
  end

  def test_failure_helpers
    r = Tasker.failure(message: "x")
    assert_equal({ "message" => "x", "error_type" => "handler_error", "retryable" => true }, r.error.to_h)
    assert_equal 1500, Tasker.failure(message: "x", retry_after: 1.5).error.retry_after_ms
    assert_equal 2, Tasker.failure(message: "x", retry_after: 0.0011).error.retry_after_ms, "rounded up"
    assert_raises(ArgumentError) { Tasker.failure(message: "x", retry_after: -1) }
    assert_raises(ArgumentError) { Tasker::RetryableError.new("x", retry_after: Float::INFINITY) }
    begin
      raise Tasker::PermanentError, "nope"
    rescue Tasker::PermanentError => e
      f = Tasker.failure_from_exception(e)
      assert_equal "PermanentError", f.error.error_type
      assert_equal false, f.error.retryable
    end
    assert_equal "hello", Tasker.success("hello").result
    assert_equal({ "a" => 1 }, Tasker.success(result: { "a" => 1 }).result)
    assert_nil Tasker.success.result
    assert_raises(ArgumentError) { Tasker.success(1, result: 2) }
  end
end
