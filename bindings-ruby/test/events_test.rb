# frozen_string_literal: true

require_relative "test_helper"

# Tasker::EventSubscriber and explicit publishes: durable delivery with the
# step's result, at-least-once redelivery without an ack, independent
# consumers, schema rejection, and a poll that releases the GVL; on SQLite and
# PostgreSQL.
class EventsTest < Minitest::Test
  include TestSupport
  extend BackendTests

  PUBLISH = Tasker::FunctionHandler.new("publish") do |ctx|
    rejected =
      begin
        ctx.publish("rbtests.shipped", { "id" => "seven" }, mode: "durable")
        ""
      rescue Tasker::InvalidInput => e
        e.message
      end
    ctx.publish("rbtests.shipped", { "id" => 7 }, mode: "broadcast")
    { "rejected" => rejected }
  end

  def golden_keys
    manifest = JSON.parse(File.read(File.join(GOLDEN_DIR, "manifest.json"), encoding: "UTF-8"))
    files = manifest.select { |e| e["schema"] == "stored_domain_event" && e["valid"] }.map { |e| e["file"] }
    refute_empty files
    files.map { |f| JSON.parse(File.read(File.join(GOLDEN_DIR, f), encoding: "UTF-8")).keys.sort }
  end

  backend_test "durable_events_are_delivered_at_least_once" do |url|
    Tasker::Engine.open(database_url: url, templates: [File.join(TEMPLATES_DIR, "events.yaml")],
                        handlers: { "publish" => PUBLISH }) do |engine|
      task = engine.run("rbtests", "events", {}, timeout: 30)
      assert_equal "complete", task["state"], task.inspect
      assert_includes task["steps"][0]["result"]["rejected"], "fails the declared schema"
      billing = Tasker::EventSubscriber.new(engine.bridge, "rb-billing")
      events = billing.poll(max_events: 10, timeout_ms: 5000)
      assert_equal %w[rbtests.noted rbtests.shipped], events.map { |e| e["name"] }
      assert_equal({ "id" => 7 }, events[1]["payload"])
      assert_equal "broadcast", events[1]["mode"]
      assert_equal task["task_uuid"], events[1]["task_uuid"]
      assert_operator events[0]["sequence"], :<, events[1]["sequence"]
      golden_keys.each { |keys| assert_equal keys, events[0].keys.sort }
      assert_empty billing.poll(timeout_ms: 0), "the session moved past what it handed out"
      again = Tasker::EventSubscriber.new(engine.bridge, "rb-billing").poll(timeout_ms: 1000)
      assert_equal events.map { |e| e["sequence"] }, again.map { |e| e["sequence"] }, "not acked: redelivered"
      assert_equal events[0]["sequence"], billing.ack(events[0]["sequence"])
      billing.rewind
      assert_equal %w[rbtests.shipped], billing.poll(timeout_ms: 0).map { |e| e["name"] }
      billing.ack(events[1]["sequence"])
      assert_empty Tasker::EventSubscriber.new(engine.bridge, "rb-billing").poll(timeout_ms: 0)
      audit = Tasker::EventSubscriber.new(engine.bridge, "rb-audit", name_pattern: "*.shipped")
      assert_equal %w[rbtests.shipped], audit.poll(timeout_ms: 0).map { |e| e["name"] }
      first = Tasker::EventSubscriber.new(engine.bridge, "rb-each").each.first
      assert_equal "rbtests.noted", first["name"]
    end
  end

  def test_an_explicit_publish_without_a_step_is_stored_at_once
    with_db(:sqlite) do |url|
      bridge = Tasker::Bridge.new(database_url: url)
      begin
        event = bridge.publish_domain_event("rbtests.ping", [1, 2], mode: "durable")
        got = Tasker::EventSubscriber.new(bridge, "rb-ping").poll(timeout_ms: 0)
        assert_equal [[event["event_id"], [1, 2], nil]], got.map { |e| e.values_at("event_id", "payload", "step_uuid") }
        assert_raises(Tasker::InvalidInput) { Tasker::EventSubscriber.new(bridge, "") }
      ensure
        bridge.shutdown(0)
      end
    end
  end

  def test_a_subscriber_poll_releases_the_gvl
    with_db(:sqlite) do |url|
      bridge = Tasker::Bridge.new(database_url: url)
      begin
        subscriber = Tasker::EventSubscriber.new(bridge, "rb-idle")
        ticks = 0
        ticker = Thread.new do
          loop do
            ticks += 1
            sleep 0.01
          end
        end
        assert_empty subscriber.poll(timeout_ms: 500)
        ticker.kill
        ticker.join
        assert_operator ticks, :>=, 10, "the other thread ticked only #{ticks} times during the poll"
      ensure
        bridge.shutdown(0)
      end
    end
  end
end
