# frozen_string_literal: true

# Shared by every test: database URLs (SQLite temp files, per-test PostgreSQL
# databases), paths of the example and test templates, and the Ruby versions of
# the example handlers. Run through scripts/test-ruby, which installs the gem
# into a fresh GEM_HOME first: `require "tasker"` must load that gem.

require "minitest/autorun"
require "delegate"
require "fileutils"
require "json"
require "logger"
require "open3"
require "securerandom"
require "stringio"
require "tmpdir"
require "uri"

require "tasker"

# Keep test output readable; failures print what they need.
Tasker.logger = Logger.new($stderr, level: ENV["TASKER_TEST_LOG"] ? Logger::DEBUG : Logger::WARN)
Tasker::Logging.install(ENV["TASKER_TEST_LOG"] || "info")

module TestSupport
  TESTS_DIR = __dir__
  REPO = File.expand_path("../..", __dir__)
  EXAMPLES_DIR = ENV["TASKER_EXAMPLES_DIR"] || File.join(REPO, "examples")
  TEMPLATES_DIR = File.join(TESTS_DIR, "templates")
  GOLDEN_DIR = ENV["TASKER_GOLDEN_DIR"] || File.join(REPO, "proto-contract", "golden")
  ADMIN_URL = ENV["TASKER_TEST_DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/postgres"
  DB_PREFIX = "tasker_rbtest_"

  # (template name, context, step to check, expected value): examples/*.yaml
  # and core/src/examples/mod.rs.
  EXAMPLES = [
    ["linear", { "n" => 6 }, "step_4", 2_821_109_907_456],
    ["diamond", { "n" => 3 }, "end", 43_046_721],
    ["tree", { "n" => 2 }, "converge", 1024],
    ["mixed_dag", { "n" => 2 }, "g", 82_944],
    ["retry", { "n" => 4 }, "finish", 256]
  ].freeze

  # The decision and batch examples, run by test/dynamic_test.rb.
  DYNAMIC_EXAMPLES = %w[conditional_approval csv_batch].freeze

  module_function

  # -- PostgreSQL -------------------------------------------------------------

  def psql_bin
    found = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |d| File.join(d, "psql") }
               .find { |f| File.executable?(f) }
    found ||= Dir["/usr/lib/postgresql/*/bin/psql"].max
    found or raise "psql not found: the PostgreSQL tests need it to create their databases " \
                   "(install postgresql-client, or run scripts/test-ruby)"
  end

  # Runs SQL against `url`; raises (never skips) when the server is unreachable.
  def psql(sql, url = ADMIN_URL)
    out, err, status = Open3.capture3({ "PGCONNECT_TIMEOUT" => "5" }, psql_bin, "-X", "-w", "-Atq", "-v",
                                      "ON_ERROR_STOP=1", "-d", url, "-c", sql)
    raise "psql failed on #{URI(url).host}: #{err.strip}" unless status.success?

    out
  end

  def with_database(url, name)
    uri = URI(url)
    uri.path = "/#{name}"
    uri.to_s
  end

  @sweep_lock = Mutex.new
  @swept = false
  @counter = 0

  class << self
    attr_reader :sweep_lock
    attr_accessor :swept, :counter
  end

  # Drops test databases left by processes that no longer run.
  def sweep_leftovers
    TestSupport.sweep_lock.synchronize do
      return if TestSupport.swept

      TestSupport.swept = true
    end
    psql("SELECT datname FROM pg_database WHERE datname LIKE '#{DB_PREFIX}%'").split.each do |name|
      pid = name[/\A#{DB_PREFIX}(\d+)_/o, 1]
      psql(%(DROP DATABASE IF EXISTS "#{name}" WITH (FORCE))) if pid && !File.exist?("/proc/#{pid}")
    end
  end

  def create_pg_database
    sweep_leftovers
    n = TestSupport.sweep_lock.synchronize { TestSupport.counter += 1 }
    name = "#{DB_PREFIX}#{Process.pid}_#{n}_#{SecureRandom.hex(4)}"
    psql(%(CREATE DATABASE "#{name}"))
    name
  end

  def drop_pg_database(name)
    psql(%(DROP DATABASE IF EXISTS "#{name}" WITH (FORCE)))
  end

  # Yields a URL of a fresh database on `backend` (:sqlite or :postgres),
  # removed afterwards.
  def with_db(backend)
    case backend
    when :sqlite
      Dir.mktmpdir("tasker-rb") { |dir| yield "sqlite://#{dir}/tasker.db" }
    when :postgres
      name = create_pg_database
      begin
        yield with_database(ADMIN_URL, name)
      ensure
        drop_pg_database(name)
      end
    else
      raise ArgumentError, backend.inspect
    end
  end

  def step(task, name)
    task["steps"].find { |s| s["name"] == name } or
      raise KeyError, "no step #{name.inspect} in #{task['steps'].map { |s| s['name'] }}"
  end

  # Polls until `n` events arrived (or 30 s passed).
  def poll_events(bridge, n, timeout: 30)
    events = []
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    while events.size < n && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      events.concat(bridge.poll_step_events(n - events.size, 500))
    end
    events
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end

# Runs each test method named `test_*_on_BACKEND` for both backends: define
# `backend_test "name" do |url| ... end` in a test class.
module BackendTests
  def backend_test(name, &body)
    %i[sqlite postgres].each do |backend|
      define_method("test_#{name}_on_#{backend}") do
        TestSupport.with_db(backend) { |url| instance_exec(url, &body) }
      end
    end
  end
end
