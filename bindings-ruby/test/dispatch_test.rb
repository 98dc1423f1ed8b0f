# frozen_string_literal: true

require_relative "test_helper"

# Resolved by constant path from the dispatch template.
module DispatchFixtures
  class Multiplier < Tasker::StepHandler
    def call(_context)
      success(result: { "value" => 6 * config["factor"] })
    end
  end
end

# How a step's handler.callable and handler.method find the code to run.
class DispatchTest < Minitest::Test
  include TestSupport

  class Greeter < Tasker::StepHandler
    def call(_context)
      success(result: { "said" => config["greeting"] })
    end

    def shout(_context)
      success(result: { "said" => "#{config['greeting'].upcase}!" })
    end
  end

  def run_dispatch(handlers)
    with_db(:sqlite) do |url|
      Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: handlers) do |engine|
        yield engine.run("rbtests", "dispatch", {}, timeout: 30)
      end
    end
  end

  def test_method_dispatch_and_resolution
    run_dispatch("greeter" => Greeter) do |task|
      assert_equal "error", task["state"]
      assert_equal({ "said" => "hello" }, step(task, "default_method")["result"])
      assert_equal({ "said" => "HELLO!" }, step(task, "other_method")["result"], "handler.method is honoured")
      assert_equal({ "value" => 42 }, step(task, "constant_path")["result"], "a constant path with its initialization")

      missing = step(task, "missing_method")
      assert_equal "unknown_method", missing["error"]["error_type"]
      assert_equal false, missing["error"]["retryable"]
      assert_equal 1, missing["attempts"]
      assert_includes missing["error"]["message"], "sing"

      helper = step(task, "helper_is_not_an_entry")
      assert_equal "unknown_method", helper["error"]["error_type"], "success() is a helper, not an entry point"

      nowhere = step(task, "nowhere")
      assert_equal "handler_not_found", nowhere["error"]["error_type"]
      assert_equal false, nowhere["error"]["retryable"]
      assert_equal 1, nowhere["attempts"]
      assert_includes nowhere["error"]["message"], "no_such_handler"
      assert_includes nowhere["error"]["message"], "greeter", "the message names the registered handlers"

      bad = step(task, "bad_constant")
      assert_equal "handler_not_found", bad["error"]["error_type"]
      assert_includes bad["error"]["message"], "NoSuchModule"
    end
  end

  def test_a_block_handler_has_only_call
    greeter = Tasker::FunctionHandler.new("greeter") { |context| { "said" => context.config["greeting"] } }
    run_dispatch("greeter" => greeter) do |task|
      assert_equal({ "said" => "hello" }, step(task, "default_method")["result"])
      assert_equal "unknown_method", step(task, "other_method")["error"]["error_type"]
    end
  end

  def test_registry_resolution_order
    explicit = Tasker::FunctionHandler.new("dup") { 1 }
    global = Tasker::FunctionHandler.new("dup") { 2 }
    Tasker.register("dup", global)
    registry = Tasker::HandlerRegistry.new([explicit])
    assert_same explicit.block, registry.resolve("dup", "call", {}).fn, "handlers given to the worker win"
    assert_same global.block, Tasker::HandlerRegistry.new.resolve("dup", "call", {}).fn
    refute Tasker::HandlerRegistry.new(nil, include_registered: false).resolve("dup", "call", {})
                                   .is_a?(Tasker::HandlerRegistry::Resolved)
  ensure
    Tasker.unregister("dup")
  end

  def test_instances_are_cached_per_initialization
    registry = Tasker::HandlerRegistry.new("greeter" => Greeter)
    a = registry.resolve("greeter", "call", { "greeting" => "a" }).instance
    b = registry.resolve("greeter", "call", { "greeting" => "b" }).instance
    assert_same a, registry.resolve("greeter", "shout", { "greeting" => "a" }).instance
    refute_same a, b
    assert_equal({ "greeting" => "b" }, b.config)
  end

  def test_class_names_and_declared_names
    named = Class.new(Tasker::StepHandler) { handler_name "billing.charge" }
    assert_equal "billing.charge", Tasker::HandlerRegistry.name_of(named)
    assert_equal "DispatchTest::Greeter", Tasker::HandlerRegistry.name_of(Greeter)
    registry = Tasker::HandlerRegistry.new([Greeter, named])
    assert_includes registry.names, "billing.charge"
    assert_includes registry.names, "DispatchTest::Greeter"
    assert_raises(ArgumentError) { Tasker::HandlerRegistry.new([-> {}]) }
  end

  def test_an_engine_serves_the_namespaces_its_templates_steps_name
    where_am_i = Tasker::FunctionHandler.new("where_am_i") { |context| { "namespace" => context.namespace } }
    with_db(:sqlite) do |url|
      template = File.join(TEMPLATES_DIR, "routed.yaml")
      Tasker::Engine.open(database_url: url, templates: [template], handlers: { "where_am_i" => where_am_i }) do |engine|
        assert_equal %w[rbrouted rbrouted.elsewhere rbrouted.flow], engine.namespaces
        task = engine.run("rbrouted", "routed", {}, timeout: 30)
        assert_equal "complete", task["state"]
        # Handlers see their template's namespace, wherever the step was routed.
        assert_equal [{ "namespace" => "rbrouted" }] * 3, task["steps"].map { |s| s["result"] }
      end
    end
  end
end
