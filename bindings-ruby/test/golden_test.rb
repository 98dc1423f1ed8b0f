# frozen_string_literal: true

require_relative "test_helper"

# The golden files of proto-contract/golden, walked from manifest.json (never a
# hand-kept list): step events build contexts; valid step results go through
# the result encoder unchanged and are accepted by the Bridge; invalid ones are
# recorded as invalid_result (or rejected when they name no usable event);
# task requests, domain events and reports are exercised where the binding
# meets them.
class GoldenTest < Minitest::Test
  include TestSupport

  UUID = /\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\z/i.freeze
  # Every schema of the manifest and where this file covers it.
  HANDLED = %w[step_event step_result completion_report task_request task_view publish_domain_event
               domain_event stored_domain_event].freeze

  def self.manifest
    path = File.join(GOLDEN_DIR, "manifest.json")
    raise "no golden manifest at #{path}" unless File.exist?(path)

    JSON.parse(File.read(path, encoding: "UTF-8"))
  end

  def manifest
    self.class.manifest
  end

  def load(entry)
    JSON.parse(File.read(File.join(GOLDEN_DIR, entry["file"]), encoding: "UTF-8"))
  end

  def entries(schema, valid)
    manifest.select { |e| e["schema"] == schema && e["valid"] == valid }
  end

  def test_manifest_covers_every_file
    listed = manifest.map { |e| e["file"] }.sort
    on_disk = Dir.glob("**/*.json", base: GOLDEN_DIR).reject { |f| f == "manifest.json" }.sort
    assert_equal on_disk, listed
    refute_empty entries("step_event", true)
    refute_empty entries("step_result", true)
    refute_empty entries("step_result", false)
    unknown = manifest.map { |e| e["schema"] }.uniq - HANDLED
    assert_empty unknown, "schemas this test does not know yet: #{unknown}"
  end

  # assert_equal that also accepts an expected nil.
  def assert_value(expected, actual, msg)
    expected.nil? ? assert_nil(actual, msg) : assert_equal(expected, actual, msg)
  end

  def walk(value)
    case value
    when Hash
      value.each do |k, v|
        assert_kind_of String, k
        walk(v)
      end
    when Array then value.each { |v| walk(v) }
    when String then assert value.valid_encoding?
    end
  end

  def test_valid_step_events_build_contexts
    entries("step_event", true).each do |entry|
      ev = load(entry)
      ctx = Tasker::StepContext.new(ev)
      msg = entry["file"]
      assert_equal ev["event_id"], ctx.event_id, msg
      assert_equal ev.values_at("task_uuid", "step_uuid", "correlation_id"),
                   [ctx.task_uuid, ctx.step_uuid, ctx.correlation_id], msg
      assert_equal ev.values_at("namespace", "task_name", "task_version"),
                   [ctx.namespace, ctx.task_name, ctx.task_version], msg
      assert_equal ev.values_at("step_name", "template_step_name", "step_type"),
                   [ctx.step_name, ctx.template_step_name, ctx.step_type], msg
      assert_equal ev["handler"]["callable"], ctx.handler_callable, msg
      assert_equal ev["handler"]["method"], ctx.handler_method, msg
      assert_equal ev["handler"]["initialization"], ctx.config, msg
      assert_equal ev["context"], ctx.context, msg
      assert_equal ev["dependency_results"], ctx.dependency_results, msg
      ev["dependency_results"].each { |name, result| assert_equal result, ctx.dependency(name), msg }
      ev["context"].each do |key, value|
        assert_equal value, ctx.input(key), msg
      end
      assert_equal ev.values_at("attempt", "max_attempts", "retryable"),
                   [ctx.attempt, ctx.max_attempts, ctx.retryable?], msg
      assert_equal ev.values_at("timeout_ms", "deadline_ms"), [ctx.timeout_ms, ctx.deadline_ms], msg
      assert_value ev["checkpoint"], ctx.checkpoint, msg
      assert_equal ev["attempt"] > 1, ctx.retry?, msg
      walk(ctx.context)
      walk(ctx.dependency_results)
      # Strings survive byte for byte (the unicode file): re-encoding gives the same data.
      assert_equal ev["context"], JSON.parse(JSON.generate(ctx.context)), msg
      next if ev["checkpoint"].nil?

      assert_equal ev["checkpoint"]["cursor"], ctx.checkpoint["cursor"]
      assert_equal ev["checkpoint"]["data"], ctx.checkpoint["data"]
    end
  end

  def test_invalid_step_events
    entries("step_event", false).each do |entry|
      ev = load(entry)
      if ev.key?("event_id")
        # The core never sends these; a context still builds from the members it knows.
        assert_equal ev["event_id"], Tasker::StepContext.new(ev).event_id
      else
        assert_raises(KeyError, entry["file"]) { Tasker::StepContext.new(ev) }
      end
    end
  end

  def test_valid_step_results_round_trip_through_the_encoder
    entries("step_result", true).each do |entry|
      msg = load(entry)
      encoded = JSON.parse(Tasker.encode_result(msg["event_id"], Tasker::StepResult.from_h(msg),
                                                msg["execution_time_ms"]))
      expected = { "result" => nil }.merge(msg)
      assert_equal expected, encoded, entry["file"]
    end
  end

  def test_the_encoder_refuses_what_it_can_see
    refused = 0
    entries("step_result", false).each do |entry|
      msg = load(entry)
      next unless msg.is_a?(Hash) && msg["event_id"].is_a?(String)

      encoded = JSON.parse(Tasker.encode_result(msg["event_id"], Tasker::StepResult.from_h(msg)))
      next unless encoded.dig("error", "error_type") == "invalid_result"

      refused += 1
      assert_equal false, encoded["success"]
      assert_equal false, encoded["error"]["retryable"]
    end
    # success_not_boolean, missing_error, success_with_error at least.
    assert_operator refused, :>=, 3
  end

  def held_events(bridge, n)
    n.times { bridge.create_task("rbtests", "golden", {}) }
    events = poll_events(bridge, n)
    assert_equal n, events.size
    events
  end

  def test_step_results_through_the_bridge
    valid = entries("step_result", true)
    invalid = entries("step_result", false)
    with_db(:sqlite) do |url|
      bridge = Tasker::Bridge.new(database_url: url, namespaces: ["rbtests"], concurrency: valid.size + invalid.size,
                                  templates: [TEMPLATES_DIR])
      begin
        events = held_events(bridge, valid.size + invalid.size)
        expectations = (valid + invalid).zip(events).map do |entry, ev|
          msg = load(entry)
          usable = msg.is_a?(Hash) && msg["event_id"].is_a?(String) && UUID.match?(msg["event_id"])
          msg["event_id"] = ev["event_id"] if usable
          [entry, ev, usable, msg]
        end
        report = bridge.complete_step_events(expectations.map(&:last))
        invalid_ids = report["invalid"].map { |i| i["event_id"] }
        expectations.each do |entry, ev, usable, _|
          if entry["valid"]
            refute_includes invalid_ids, ev["event_id"], entry["file"]
          elsif usable
            assert_includes invalid_ids, ev["event_id"], "#{entry['file']} was not recorded as invalid_result"
          end
        end
        unusable = expectations.reject { |_, _, usable, _| usable }
        assert_equal unusable.size, report["rejected"].size
        assert_equal expectations.size - unusable.size, report["accepted"]

        expectations.each do |entry, ev, usable, _|
          unless usable
            # Never answered: release it so the task is not left hanging.
            assert_equal true, bridge.release_step_event(ev["event_id"])
            next
          end
          task = bridge.wait_for_task(ev["task_uuid"], 10_000)
          s = task["steps"].first
          msg = load(entry)
          if entry["valid"] && msg["success"]
            assert_equal "complete", s["state"], entry["file"]
            assert_value msg["result"], s["result"], entry["file"]
          elsif entry["valid"]
            assert_equal msg["error"]["error_type"], s["error"]["error_type"], entry["file"]
          else
            assert_equal "error", s["state"], entry["file"]
            assert_equal "invalid_result", s["error"]["error_type"], entry["file"]
            assert_equal false, s["error"]["retryable"], entry["file"]
          end
        end
      ensure
        bridge.shutdown(0)
      end
    end
  end

  def test_task_requests
    with_db(:sqlite) do |url|
      bridge = Tasker::Bridge.new(database_url: url)
      begin
        (entries("task_request", true) + entries("task_request", false)).each do |entry|
          # Valid requests name templates this database does not have.
          expected = entry["valid"] ? Tasker::TemplateNotFound : Tasker::InvalidInput
          assert_raises(expected, entry["file"]) { bridge.create_task_request(load(entry)) }
        end
      ensure
        bridge.shutdown(0)
      end
    end
  end

  def test_domain_events_and_their_publication
    with_db(:sqlite) do |url|
      bridge = Tasker::Bridge.new(database_url: url)
      begin
        keys = nil
        entries("publish_domain_event", true).each do |entry|
          msg = load(entry)
          event = bridge.publish_domain_event(msg["name"], msg["payload"], mode: msg["mode"])
          assert_equal msg.values_at("name", "payload", "mode"), event.values_at("name", "payload", "mode")
          assert_match UUID, event["event_id"]
          keys = event.keys.sort
        end
        entries("publish_domain_event", false).each do |entry|
          msg = load(entry)
          assert_raises(Tasker::InvalidInput, entry["file"]) do
            bridge.publish_domain_event(msg["name"], msg["payload"], mode: msg["mode"])
          end
        end
        entries("domain_event", true).each do |entry|
          assert_equal load(entry).keys.sort, keys, "#{entry['file']}: what publish_domain_event returns"
        end
        # Durable and broadcast publishes were stored: an EventSubscriber reads them.
        stored = Tasker::EventSubscriber.new(bridge, "golden").poll(timeout_ms: 0)
        refute_empty stored
        entries("stored_domain_event", true).each do |entry|
          stored.each do |event|
            assert_equal load(entry).keys.sort, event.keys.sort, "#{entry['file']}: what EventSubscriber#poll returns"
          end
        end
        entries("stored_domain_event", false).each do |entry|
          refute_equal load(entry).keys.sort, stored.first.keys.sort, entry["file"]
        end
      ensure
        bridge.shutdown(0)
      end
    end
  end

  def test_reports_and_task_views_read_by_the_ruby_layer
    entries("completion_report", true).each do |entry|
      report = load(entry)
      assert_kind_of Integer, report["accepted"]
      report["invalid"].each { |i| assert_kind_of String, i["message"] }
      report["rejected"].each { |r| assert_kind_of String, r["reason"] }
    end
    entries("task_view", true).each do |entry|
      view = load(entry)
      assert_includes Tasker::FINISHED_STATES + %w[pending in_progress], view["state"], entry["file"]
      message = Tasker::TaskFailed.new(view).message
      assert_includes message, view["task_uuid"]
      view["steps"].each { |s| refute_nil s["name"] }
    end
  end
end
