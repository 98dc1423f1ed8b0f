# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# Graceful shutdown: running handlers finish within the grace period, the rest
# is handed back without counting an attempt; SIGTERM drains a worker process.
class ShutdownTest < Minitest::Test
  include TestSupport

  def slow_handler(started)
    Tasker::FunctionHandler.new("slow") do |ctx|
      started << ctx.step_uuid
      sleep ctx.input("seconds", 0)
      { "slept" => ctx.input("seconds", 0) }
    end
  end

  def test_stop_waits_for_running_handlers
    started = Thread::Queue.new
    with_db(:sqlite) do |url|
      client = Tasker::Client.new(database_url: url, templates: [TEMPLATES_DIR])
      task = client.create_task("rbtests", "slow", { "seconds" => 1.0 })
      worker = Tasker::Worker.new(database_url: url, namespaces: ["rbtests"], handlers: [slow_handler(started)],
                                  shutdown_grace_ms: 10_000)
      runner = Thread.new { worker.run }
      started.pop
      t0 = monotonic
      report = worker.stop
      took = monotonic - t0
      runner.join
      assert_equal({ "drained" => 1, "released" => 0 }, report)
      assert_equal report, worker.drain_report
      assert_operator took, :>=, 0.5, "stop waited for the running handler"
      done = client.get_task(task["task_uuid"])
      assert_equal "complete", done["state"]
      assert_equal({ "slept" => 1.0 }, step(done, "slow")["result"])
      assert_raises(Tasker::Error) { worker.start }
    ensure
      client&.close
    end
  end

  def test_a_handler_past_the_grace_period_is_handed_back
    started = Thread::Queue.new
    with_db(:sqlite) do |url|
      client = Tasker::Client.new(database_url: url, templates: [TEMPLATES_DIR])
      task = client.create_task("rbtests", "slow", { "seconds" => 3 })
      worker = Tasker::Worker.new(database_url: url, namespaces: ["rbtests"], handlers: [slow_handler(started)],
                                  shutdown_grace_ms: 200)
      worker.start
      started.pop
      report = worker.stop
      assert_equal({ "drained" => 0, "released" => 1 }, report)
      s = step(client.get_task(task["task_uuid"]), "slow")
      refute_equal "complete", s["state"]
      assert_equal 0, s["attempts"], "a released step does not count the attempt"

      # Another worker runs it to the end.
      quick = Tasker::FunctionHandler.new("slow") { { "slept" => 0 } }
      Tasker::Worker.new(database_url: url, namespaces: ["rbtests"], handlers: [quick]).tap do |w|
        w.start
        assert_equal "complete", client.wait_for_task(task["task_uuid"], 30_000)["state"]
        w.stop
      end
    ensure
      client&.close
    end
  end

  WORKER_SCRIPT = <<~RUBY
    require "tasker"
    Tasker.logger = Logger.new($stderr, level: Logger::INFO)
    slow = Tasker.handler("slow") do |ctx|
      $stdout.puts("started"); $stdout.flush
      sleep ctx.input("seconds", 0)
      { "slept" => true }
    end
    worker = Tasker::Worker.new(database_url: ARGV[0], namespaces: ["rbtests"], concurrency: 2)
    report = worker.run
    $stdout.puts("report=\#{JSON.generate(report)}")
  RUBY

  def test_sigterm_drains_a_worker_process
    with_db(:sqlite) do |url|
      client = Tasker::Client.new(database_url: url, templates: [TEMPLATES_DIR])
      task = client.create_task("rbtests", "slow", { "seconds" => 1 })
      Dir.mktmpdir do |dir|
        script = File.join(dir, "worker.rb")
        File.write(script, WORKER_SCRIPT)
        out, err, status = nil
        Open3.popen3(RbConfig.ruby, script, url) do |stdin, stdout, stderr, wait|
          stdin.close
          assert_equal "started", stdout.gets&.strip
          Process.kill("TERM", wait.pid)
          out = stdout.read
          err = stderr.read
          status = wait.value
        end
        assert status.success?, "worker exited with #{status.inspect}: #{err}"
        assert_match(/report=\{"drained":1,"released":0\}/, out)
        assert_match(/stopping \(SIGTERM\)/, err)
      end
      assert_equal "complete", client.get_task(task["task_uuid"])["state"]
    ensure
      client&.close
    end
  end
end
