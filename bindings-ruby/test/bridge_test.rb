# frozen_string_literal: true

require_relative "test_helper"

# Tasker::Bridge, the native contract one-to-one.
class BridgeTest < Minitest::Test
  include TestSupport

  def sqlite
    Dir.mktmpdir("tasker-rb") { |dir| yield "sqlite://#{dir}/tasker.db" }
  end

  def open_bridge(url, **options)
    Tasker::Bridge.new(database_url: url, namespaces: ["rbtests"], templates: [TEMPLATES_DIR], **options)
  end

  def test_poll_releases_the_gvl
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["nothing_here"])
      ticks = 0
      ticker = Thread.new do
        loop do
          ticks += 1
          sleep 0.01
        end
      end
      t0 = monotonic
      events = bridge.poll_step_events(4, 500)
      took = monotonic - t0
      ticker.kill.join
      assert_equal [], events
      assert_operator took, :>=, 0.45
      assert_operator took, :<, 2.0
      assert_operator ticks, :>=, 20, "the other thread ticked only #{ticks} times during a 500 ms poll"
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_an_interrupt_stops_a_poll_at_once
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["nothing_here"])
      poller = Thread.new do
        bridge.poll_step_events(1, 30_000)
      rescue RuntimeError => e
        e
      end
      sleep 0.3
      t0 = monotonic
      poller.raise(RuntimeError, "wake up")
      outcome = poller.value
      assert_kind_of RuntimeError, outcome
      assert_equal "wake up", outcome.message
      assert_operator monotonic - t0, :<, 1.0, "Thread#raise waited for the poll's timeout"
      # The bridge is still usable.
      assert_equal [], bridge.poll_step_events(1, 10)
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_a_killed_thread_does_not_wait_for_the_poll
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["nothing_here"])
      poller = Thread.new { bridge.poll_step_events(1, 30_000) }
      sleep 0.2
      t0 = monotonic
      poller.kill.join
      assert_operator monotonic - t0, :<, 1.0
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_calls_work_while_an_interrupt_is_deferred
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["nothing_here"])
      seen = []
      worker = Thread.new do
        Thread.handle_interrupt(RuntimeError => :never) do
          sleep 0.2 # the raise arrives meanwhile and waits
          seen << bridge.poll_step_events(1, 200)
          seen << bridge.worker_status["state"]
          seen << (bridge.get_task(SecureRandom.uuid) rescue $!.class) # rubocop:disable Style/RescueModifier
        end
      rescue RuntimeError => e
        seen << e.message
      end
      sleep 0.05
      worker.raise(RuntimeError, "deferred")
      assert worker.join(10), "a deferred interrupt must not hang the calls"
      assert_equal [[], "running", Tasker::TaskNotFound, "deferred"], seen
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_round_trip
    sqlite do |url|
      bridge = open_bridge(url, concurrency: 2)
      task = bridge.create_task("rbtests", "slow", { "seconds" => 0 })
      refute_includes %w[complete error], task["state"]
      events = poll_events(bridge, 1)
      assert_equal 1, events.size
      ev = events.first
      assert_equal "slow", ev["step_name"]
      assert_equal "slow", ev.dig("handler", "callable")
      assert_equal 1, ev["attempt"]
      assert_equal task["task_uuid"], ev["task_uuid"]
      assert_kind_of Integer, bridge.extend_lease(ev["event_id"])
      assert_nil bridge.checkpoint_step(ev["event_id"], 5, { "partial" => true })
      published = bridge.publish_domain_event("rbtests.happened", { "x" => 1 }, event_id: ev["event_id"])
      assert_equal "rbtests.happened", published["name"]
      assert_equal "fast", published["mode"]
      assert_equal ev["step_uuid"], published["step_uuid"]
      bare = bridge.publish_domain_event("rbtests.bare", [1, 2], mode: "durable")
      assert_nil bare["step_uuid"]
      assert_raises(Tasker::InvalidInput) { bridge.publish_domain_event("x", {}, mode: "sometimes") }
      status = bridge.worker_status
      assert_equal 1, status["outstanding"]
      assert_equal "running", status["state"]
      text = "Zoë \u{1F680} \u202Eرسالة\u202C \"q\" \\ \t\u0001"
      report = bridge.complete_step_events(
        [{ "event_id" => ev["event_id"], "success" => true, "result" => { "done" => 1, "text" => text },
           "execution_time_ms" => 3 }]
      )
      assert_equal({ "accepted" => 1, "invalid" => [], "rejected" => [] }, report)
      done = bridge.wait_for_task(task["task_uuid"], 10_000)
      assert_equal "complete", done["state"]
      assert_equal({ "done" => 1, "text" => text }, done["steps"][0]["result"], "strings survive byte for byte")
      again = bridge.complete_step_events([{ "event_id" => ev["event_id"], "success" => true, "result" => {} }])
      assert_equal 0, again["accepted"]
      assert_equal 1, again["rejected"].size
      assert_raises(Tasker::UnknownEvent) { bridge.extend_lease(ev["event_id"]) }
      assert_raises(Tasker::UnknownEvent) { bridge.checkpoint_step(ev["event_id"], 1, nil) }
      assert_raises(Tasker::InvalidInput) { bridge.get_task("not-a-uuid") }
      assert_raises(Tasker::TaskNotFound) { bridge.get_task(SecureRandom.uuid) }
      assert_raises(Tasker::TemplateNotFound) { bridge.create_task("rbtests", "nope") }
      assert_equal false, bridge.release_step_event(SecureRandom.uuid)
      assert_equal({ "drained" => 0, "released" => 0 }, bridge.shutdown(1000))
      assert_equal({ "drained" => 0, "released" => 0 }, bridge.shutdown(1000), "shutdown is idempotent")
      e = assert_raises(Tasker::WorkerClosed) { bridge.poll_step_events(1, 10) }
      assert_equal "worker_closed", e.code
      assert_raises(Tasker::WorkerClosed) { bridge.get_task(SecureRandom.uuid) }
    end
  end

  def test_release_hands_the_step_back
    sqlite do |url|
      bridge = open_bridge(url)
      task = bridge.create_task("rbtests", "slow", { "seconds" => 0 })
      first = poll_events(bridge, 1).first
      assert_equal true, bridge.release_step_event(first["event_id"])
      again = poll_events(bridge, 1).first
      assert_equal first["step_uuid"], again["step_uuid"]
      assert_equal 1, again["attempt"], "a release does not count the attempt"
      refute_equal first["event_id"], again["event_id"]
      bridge.complete_step_events([{ "event_id" => again["event_id"], "success" => true, "result" => 1 }])
      assert_equal "complete", bridge.wait_for_task(task["task_uuid"], 10_000)["state"]
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_client_errors
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, templates: [TEMPLATES_DIR])
      task = bridge.create_task("rbtests", "slow", { "seconds" => 0 })
      e = assert_raises(Tasker::WaitTimedOut) { bridge.wait_for_task(task["task_uuid"], 100) }
      assert_equal "wait_timed_out", e.code
      assert_kind_of Tasker::Error, e
      e = assert_raises(Tasker::InvalidInput) { bridge.poll_step_events(1, 10) }
      assert_match(/no namespaces/, e.message, "a client-only bridge has no events")
      same = bridge.create_task("rbtests", "slow", {}, idempotency_key: "k1")
      assert_equal same["task_uuid"], bridge.create_task("rbtests", "slow", {}, idempotency_key: "k1")["task_uuid"]
    ensure
      bridge&.shutdown(0)
    end
    assert_raises(Tasker::InvalidConfig) { Tasker::Bridge.new(database_url: "sqlite:///tmp/x.db", no_such: 1) }
    assert_raises(Tasker::InvalidConfig) { Tasker::Bridge.new(database_url: "mysql://nope") }
    assert_raises(Tasker::InvalidConfig) do
      Tasker::Bridge.new(database_url: "sqlite:///tmp/x.db", templates: ["/no/such/templates"])
    end
  end

  def test_unserialisable_hash_becomes_invalid_result_not_a_spoiled_batch
    sqlite do |url|
      bridge = open_bridge(url, concurrency: 2)
      t1 = bridge.create_task("rbtests", "slow", { "seconds" => 0 })
      t2 = bridge.create_task("rbtests", "slow", { "seconds" => 0 })
      bad, good = poll_events(bridge, 2)
      report = bridge.complete_step_events(
        [
          { "event_id" => bad["event_id"], "success" => true, "result" => { "x" => Object.new } },
          { "event_id" => good["event_id"], "success" => true, "result" => { "fine" => true } }
        ]
      )
      assert_equal 2, report["accepted"]
      views = [t1, t2].to_h { |t| [t["task_uuid"], bridge.wait_for_task(t["task_uuid"], 10_000)] }
      assert_equal "invalid_result", views[bad["task_uuid"]]["steps"][0]["error"]["error_type"]
      assert_equal({ "fine" => true }, views[good["task_uuid"]]["steps"][0]["result"])
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_a_forked_child_gets_forked_process
    sqlite do |url|
      bridge = Tasker::Bridge.new(database_url: url, templates: [TEMPLATES_DIR])
      reader, writer = IO.pipe
      pid = fork do
        reader.close
        begin
          bridge.get_task(SecureRandom.uuid)
          writer.write("no error")
        rescue Tasker::ForkedProcess => e
          writer.write("#{e.code}: #{e.message}")
        rescue Exception => e # rubocop:disable Lint/RescueException
          writer.write("#{e.class}: #{e.message}")
        end
        writer.close
        exit!(0)
      end
      writer.close
      said = reader.read
      _, status = Process.wait2(pid)
      assert status.success?
      assert_match(/\Aforked: /, said)
      # The parent's bridge is untouched.
      assert_raises(Tasker::TaskNotFound) { bridge.get_task(SecureRandom.uuid) }
    ensure
      bridge&.shutdown(0)
    end
  end

  def test_loopback_hands_out_synthetic_events
    bridge = Tasker::Bridge.loopback(4)
    events = bridge.poll_step_events(10, 1000)
    assert_equal 4, events.size, "never more than the concurrency"
    assert_equal "loopback", events.first["namespace"]
    report = bridge.complete_step_events(events.map { |e| { "event_id" => e["event_id"], "success" => true } })
    assert_equal 4, report["accepted"]
  ensure
    bridge&.shutdown(0)
  end
end
