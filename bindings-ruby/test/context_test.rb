# frozen_string_literal: true

require_relative "test_helper"

# What a handler sees (StepContext) and what it can do through it.
class ContextTest < Minitest::Test
  include TestSupport

  def test_context_fields_end_to_end
    seen = Thread::Queue.new
    log = StringIO.new
    inspect_context = Tasker::FunctionHandler.new("inspect_context") do |ctx|
      seen << {
        "event_id" => ctx.event_id, "task_uuid" => ctx.task_uuid, "step_uuid" => ctx.step_uuid,
        "correlation_id" => ctx.correlation_id, "step_name" => ctx.step_name, "namespace" => ctx.namespace,
        "task_name" => ctx.task_name, "task_version" => ctx.task_version, "context" => ctx.context,
        "deps" => ctx.dependency_results, "parent" => ctx.dependency("parent"), "order" => ctx.input("order"),
        "order_sym" => ctx.input(:order), "missing" => ctx.input("nope", "fallback"), "config" => ctx.config,
        "attempt" => ctx.attempt, "max_attempts" => ctx.max_attempts, "retry" => ctx.retry?,
        "last" => ctx.last_attempt?, "checkpoint" => ctx.checkpoint, "deadline_ms" => ctx.deadline_ms,
        "timeout_ms" => ctx.timeout_ms, "remaining_ms" => ctx.remaining_ms
      }
      ctx.logger.info("hello from #{ctx.step_name}")
      if ctx.config["role"] == "child" && ctx.attempt == 1
        raise Tasker::RetryableError, "once more"
      end

      { "role" => ctx.config["role"], "attempt" => ctx.attempt }
    end
    previous = Tasker.logger
    Tasker.logger = Logger.new(log, level: Logger::INFO)
    correlation = nil
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR],
                          handlers: { "inspect_context" => inspect_context }) do |engine|
        task = engine.run("rbtests", "context", { "order" => { "id" => 7, "items" => [1, 2] } }, timeout: 30)
        assert_equal "complete", task["state"], task.inspect
        correlation = task["correlation_id"]
        views = []
        views << seen.pop until seen.empty?
        parent, child1, child2 = views
        assert_equal "parent", parent["step_name"]
        assert_equal task["task_uuid"], parent["task_uuid"]
        assert_equal step(task, "parent")["step_uuid"], parent["step_uuid"]
        assert_equal task["correlation_id"], parent["correlation_id"]
        assert_equal %w[rbtests context 1.0.0], parent.values_at("namespace", "task_name", "task_version")
        assert_equal({ "id" => 7, "items" => [1, 2] }, parent["order"])
        assert_equal parent["order"], parent["order_sym"]
        assert_equal "fallback", parent["missing"]
        assert_equal({ "role" => "parent", "limits" => [1, 2] }, parent["config"])
        assert_equal({}, parent["deps"])
        assert_equal [1, 3, false, false], parent.values_at("attempt", "max_attempts", "retry", "last")
        assert_nil parent["checkpoint"]
        assert_equal 30_000, parent["timeout_ms"]
        assert_operator parent["remaining_ms"], :>, 25_000
        assert_operator parent["remaining_ms"], :<=, 30_000

        assert_equal({ "role" => "parent", "attempt" => 1 }, child1["parent"])
        assert_equal({ "parent" => { "role" => "parent", "attempt" => 1 } }, child1["deps"])
        assert_equal [1, 2, false, false], child1.values_at("attempt", "max_attempts", "retry", "last")
        assert_equal [2, 2, true, true], child2.values_at("attempt", "max_attempts", "retry", "last")
        refute_equal child1["event_id"], child2["event_id"]
      end
    end
    text = log.string
    # A handler's log line carries its task's correlation id.
    assert_match(/\[correlation_id=#{correlation} step=parent task=[0-9a-f-]{36}\] hello from parent/, text)
    assert_match(/hello from child/, text)
  ensure
    Tasker.logger = previous
  end

  def test_checkpoint_extend_lease_and_publish
    runs = Thread::Queue.new
    chunked = Tasker::FunctionHandler.new("chunked") do |ctx|
      first, last = ctx.cursor_range
      runs << [ctx.attempt, first, ctx.checkpoint]
      before = ctx.deadline_ms
      after = ctx.extend_lease
      runs << [:lease, before, after]
      ctx.publish("rbtests.progress", { "from" => first })
      (first...last).each do |i|
        ctx.save_checkpoint(i + 1, { "done" => i + 1 }) if i.odd?
        raise "crash at 5 on the first attempt" if ctx.attempt == 1 && i == 5
      end
      { "processed_from" => first }
    end
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "chunked" => chunked }) do |eng|
        task = eng.run("rbtests", "checkpoint", {}, timeout: 30)
        assert_equal "complete", task["state"], task.inspect
        seen = []
        seen << runs.pop until runs.empty?
        attempts = seen.reject { |r| r[0] == :lease }
        assert_equal [1, 0, nil], attempts[0]
        assert_equal 2, attempts[1][0]
        # Checkpoints at 2, 4 and 6, then the crash at 5 (after saving 6).
        assert_equal 6, attempts[1][1], "the retry resumes from the last checkpoint"
        assert_equal 6, attempts[1][2]["cursor"]
        assert_equal({ "done" => 6 }, attempts[1][2]["data"])
        assert_kind_of Integer, attempts[1][2]["saved_at_ms"]
        seen.select { |r| r[0] == :lease }.each { |_, before, after| assert_operator after, :>=, before }
        assert_equal({ "processed_from" => 6 }, step(task, "worker")["result"])
      end
    end
  end

  def test_a_detached_context_refuses_to_act
    event = JSON.parse(File.read(File.join(GOLDEN_DIR, "step_event/valid/first_attempt.json")))
    ctx = Tasker::StepContext.new(event)
    assert_raises(RuntimeError) { ctx.extend_lease }
    assert_raises(RuntimeError) { ctx.save_checkpoint(1) }
    assert_raises(KeyError) { ctx.cursor_range }
  end
end
