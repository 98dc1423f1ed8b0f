# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/example_handlers"

# Every example workflow of examples/*.yaml with Ruby handlers, on SQLite and
# PostgreSQL, with class handlers and with block handlers.
class ExamplesTest < Minitest::Test
  include TestSupport
  extend BackendTests

  def run_examples(url, handlers)
    engine = Tasker::Engine.new(database_url: url, templates: [EXAMPLES_DIR], handlers: handlers, concurrency: 4)
    assert_equal ["examples"], engine.namespaces
    EXAMPLES.each do |name, context, last, expected|
      task = engine.run("examples", name, context, timeout: 60)
      assert_equal "complete", task["state"], "#{name}: #{task.inspect}"
      assert_equal expected, step(task, last)["result"]["value"], name
      task["steps"].each { |s| assert_equal "complete", s["state"], "#{name}/#{s['name']}" }
      if name == "retry"
        assert_equal 3, step(task, "fetch")["attempts"], "flaky_square succeeds on attempt 3"
      end
    end
  ensure
    report = engine&.close
    assert_equal 0, report["released"] if report
  end

  def test_every_example_template_is_covered
    on_disk = Dir[File.join(EXAMPLES_DIR, "*.yaml")].map { |f| File.basename(f, ".yaml") }.sort
    refute_empty on_disk
    covered = EXAMPLES.map(&:first) + DYNAMIC_EXAMPLES
    assert_equal on_disk, covered.sort, "add the new example to TestSupport::EXAMPLES (or DYNAMIC_EXAMPLES)"
  end

  backend_test("examples_with_class_handlers") { |url| run_examples(url, ExampleHandlers::CLASSES) }

  backend_test("examples_with_block_handlers") { |url| run_examples(url, ExampleHandlers::BLOCKS) }

  def test_process_wide_block_registration
    Dir.mktmpdir do |dir|
      Tasker.handler("square") do |context|
        n = ExampleHandlers.single_input(context)
        { "value" => n * n }
      end
      Tasker::Engine.open(database_url: "sqlite://#{dir}/t.db", templates: [File.join(EXAMPLES_DIR, "linear.yaml")]) do |engine|
        task = engine.run("examples", "linear", { "n" => 6 }, check: true)
        assert_equal 2_821_109_907_456, step(task, "step_4")["result"]["value"]
      end
    ensure
      Tasker.unregister("square")
    end
  end

  def test_engine_run_check_raises_task_failed
    Dir.mktmpdir do |dir|
      handlers = ExampleHandlers::CLASSES.merge(
        "square" => Tasker::FunctionHandler.new("square") { raise Tasker::PermanentError, "no squares today" }
      )
      Tasker::Engine.open(database_url: "sqlite://#{dir}/t.db", templates: [EXAMPLES_DIR], handlers: handlers) do |eng|
        e = assert_raises(Tasker::TaskFailed) { eng.run("examples", "linear", { "n" => 2 }, check: true) }
        assert_equal "error", e.task["state"]
        assert_match(/no squares today/, e.message)
      end
    end
  end

  def test_client_creates_tasks_a_worker_runs
    Dir.mktmpdir do |dir|
      url = "sqlite://#{dir}/t.db"
      client = Tasker::Client.new(database_url: url, templates: [EXAMPLES_DIR])
      task = client.create_task("examples", "diamond", { "n" => 3 })
      worker = Tasker::Worker.new(database_url: url, namespaces: ["examples"], handlers: ExampleHandlers::CLASSES,
                                  concurrency: 2)
      runner = Thread.new { worker.run }
      done = client.wait_for_task(task["task_uuid"], 30_000)
      assert_equal "complete", done["state"]
      assert_equal 43_046_721, step(done, "end")["result"]["value"]
      assert_equal done, client.get_task(task["task_uuid"])
      worker.stop
      runner.join
      assert worker.stopped?
    ensure
      client&.close
    end
  end
end
