# frozen_string_literal: true

require_relative "test_helper"

# The installed gem: where it loads from, what it holds, what it exports.
class PackageTest < Minitest::Test
  def test_loads_the_installed_gem_from_gem_home
    gem_home = ENV["TASKER_EXPECT_GEM_HOME"]
    skip_unless_script = gem_home.nil? || gem_home.empty?
    flunk "run the tests through scripts/test-ruby (TASKER_EXPECT_GEM_HOME is not set)" if skip_unless_script

    home = File.realpath(gem_home)
    native = $LOADED_FEATURES.grep(%r{/tasker_native\.so\z})
    assert_equal 1, native.size, native.inspect
    assert File.realpath(native.first).start_with?(home + "/"), "native library #{native.first} is not in #{home}"
    ruby_file = $LOADED_FEATURES.find { |f| f.end_with?("/lib/tasker.rb") }
    assert ruby_file && File.realpath(ruby_file).start_with?(home + "/"), "tasker.rb loaded from #{ruby_file}"
    assert_includes native.first, "/lib/tasker/#{Tasker::RUBY_MINOR}/"
  end

  def test_gem_is_a_precompiled_platform_gem_without_dependencies
    spec = Gem.loaded_specs.fetch("tasker-core")
    assert_equal Tasker::VERSION, spec.version.to_s
    assert_equal Gem::Platform.local.to_s, spec.platform.to_s
    assert_empty spec.extensions, "nothing is compiled at install time"
    assert_empty spec.runtime_dependencies
    assert spec.required_ruby_version.satisfied_by?(Gem::Version.new(RUBY_VERSION))
    minor = Gem::Version.new(Tasker::RUBY_MINOR).segments
    refute spec.required_ruby_version.satisfied_by?(Gem::Version.new("#{minor[0]}.#{minor[1] + 1}.0")),
           "a native library supports exactly the Ruby minor it was built for"
  end

  def test_versions_agree
    assert_equal Tasker::VERSION, Tasker::Native::VERSION
  end

  def test_one_error_class_per_code
    codes = Tasker::Native.error_codes
    assert_equal codes.sort, Tasker::ERROR_CLASSES.keys.sort
    codes.each do |code|
      klass = Tasker::Error.for_code(code)
      assert_operator klass, :<, Tasker::Error
      assert_operator klass, :<, StandardError
      assert_equal code, klass.code
      assert_equal code, klass.new("x").code
    end
    assert_equal Tasker::InternalError, Tasker::Error.for_code("no_such_code")
  end

  def test_runtime_is_created_once_per_process
    Dir.mktmpdir do |dir|
      bridge = Tasker::Bridge.new(database_url: "sqlite://#{dir}/x.db")
      assert_equal Process.pid, Tasker::Native.runtime_pid
      bridge.shutdown(0)
    end
  end

  def test_public_api
    %i[Bridge Worker Engine Client StepHandler StepContext StepResult StepError Api Decision Batchable
       PermanentError RetryableError HandlerRegistry FunctionHandler EventSubscriber].each do |name|
      assert Tasker.const_defined?(name), "Tasker::#{name} is missing"
    end
    %i[poll_step_events complete_step_events extend_lease release_step_event checkpoint_step
       publish_domain_event worker_status shutdown create_task get_task wait_for_task].each do |m|
      assert Tasker::Bridge.method_defined?(m), "Tasker::Bridge##{m} is missing"
    end
    assert_respond_to Tasker::Bridge, :loopback
    %i[poll ack rewind consumer each].each do |m|
      assert Tasker::EventSubscriber.method_defined?(m), "Tasker::EventSubscriber##{m} is missing"
    end
  end
end

# A Rust panic raises Tasker::InternalError; the process lives on.
class PanicTest < Minitest::Test
  def test_a_panic_becomes_internal_error
    [true, false].each do |blocking|
      e = assert_raises(Tasker::InternalError) { Tasker::Native.panic_for_test("boom #{blocking}", blocking) }
      assert_equal "internal", e.code
      assert_match(/panic in the Rust core: boom #{blocking}/, e.message)
    end
    # Still usable afterwards.
    Dir.mktmpdir do |dir|
      Tasker::Bridge.new(database_url: "sqlite://#{dir}/x.db").shutdown(0)
    end
  end
end
