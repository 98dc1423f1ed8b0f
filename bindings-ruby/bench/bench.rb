# frozen_string_literal: true

# What the Ruby binding costs, next to `tasker-bench --bridge` (the same loop in Rust).
#
#   ruby bench/bench.rb [--quick]
#
# Prints:
#   ruby_us_per_step_batch{1,64}   microseconds per step of poll -> JSON.parse -> StepContext ->
#                                  result built and encoded as the Worker does -> complete, on a
#                                  loopback bridge (synthetic events, no database work)
#   ruby_worker_us_per_step        the whole Tasker::Worker path on the loopback bridge (poller,
#                                  handler threads, result encoder, batched completer)
#   ruby_rust_steps_per_s, ruby_worker_steps_per_s
#                                  one-step tasks on SQLite, created beforehand through a
#                                  client-only bridge, then run by the Rust `noop` handler
#                                  (builtin_handlers: true) and by a Ruby Worker with a trivial handler
#   ruby_throughput_share_of_rust  ruby_worker_steps_per_s / ruby_rust_steps_per_s
#
# --quick: a short run for scripts/test-ruby (the figures are printed, not meaningful).

require "delegate"
require "json"
require "logger"
require "tmpdir"
require "tasker"

QUICK = ARGV.include?("--quick")
LOOP_STEPS = QUICK ? 2_000 : 100_000
TASKS = QUICK ? 200 : 5_000
CONCURRENCY = Integer(ENV.fetch("TASKER_BENCH_CONCURRENCY", "32"))
TEMPLATE = File.join(__dir__, "noop.yaml")

Tasker.logger = Logger.new($stderr, level: Logger::WARN)

def monotonic
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

# The handler side of one event, as Tasker::Worker does it (context, handler,
# result, encoding).
HANDLER = ->(_context) { { "value" => 1 } }

def round_trips(native, batch, steps)
  done = 0
  while done < steps
    events = JSON.parse(native.poll_step_events(batch, 1000))
    parts = events.map do |event|
      started = monotonic
      ctx = Tasker::StepContext.new(event)
      outcome = Tasker.success(result: HANDLER.call(ctx))
      Tasker.encode_result(ctx.event_id, outcome, ((monotonic - started) * 1000).to_i)
    end
    JSON.parse(native.complete_step_events("[#{parts.join(',')}]"))
    done += parts.size
  end
  done
end

def bridge_loop(batch, steps)
  bridge = Tasker::Bridge.loopback(batch)
  round_trips(bridge.native, batch, [steps / 10, batch].max)
  t0 = monotonic
  done = round_trips(bridge.native, batch, steps)
  (monotonic - t0) * 1e6 / done
ensure
  bridge&.shutdown(0)
end

# Counts the results a worker sends through a bridge.
class CountingBridge < SimpleDelegator
  def initialize(bridge)
    super
    @lock = ::Mutex.new
    @cond = ::ConditionVariable.new
    @sent = 0
  end

  def complete_step_events_json(text)
    report = __getobj__.complete_step_events_json(text)
    n = report["accepted"] + report["rejected"].size
    @lock.synchronize do
      @sent += n
      @cond.broadcast
    end
    report
  end

  def sent
    @lock.synchronize { @sent }
  end

  def wait_for(count, timeout)
    clock = -> { ::Process.clock_gettime(::Process::CLOCK_MONOTONIC) }
    deadline = clock.call + timeout
    @lock.synchronize do
      @cond.wait(@lock, deadline - clock.call) while @sent < count && clock.call < deadline
      @sent
    end
  end
end

def worker_loop(steps)
  bridge = CountingBridge.new(Tasker::Bridge.loopback(CONCURRENCY))
  handler = Tasker::FunctionHandler.new("loopback") { { "value" => 1 } }
  worker = Tasker::Worker.new(handlers: [handler], concurrency: CONCURRENCY, bridge: bridge)
  worker.start
  bridge.wait_for([steps / 10, CONCURRENCY].max, 120)
  start = bridge.sent
  t0 = monotonic
  finished = bridge.wait_for(start + steps, 300)
  elapsed = monotonic - t0
  elapsed * 1e6 / [finished - start, 1].max
ensure
  worker&.stop
end

# Creates `n` one-step tasks through a client-only bridge.
def seed(url, n)
  client = Tasker::Bridge.new(database_url: url, templates: [TEMPLATE])
  n.times { client.create_task("rbbench", "noop", {}) }
ensure
  client&.shutdown(0)
end

def wait_succeeded(bridge, n, timeout = 600)
  deadline = monotonic + timeout
  loop do
    done = bridge.worker_status["succeeded"]
    return done if done >= n
    raise "only #{done} of #{n} steps ran in #{timeout}s" if monotonic > deadline

    sleep 0.002
  end
end

def rust_throughput(n)
  Dir.mktmpdir("tasker-rb-bench") do |dir|
    url = "sqlite://#{dir}/bench.db"
    seed(url, n)
    t0 = monotonic
    bridge = Tasker::Bridge.new(database_url: url, namespaces: ["rbbench"], concurrency: CONCURRENCY,
                                builtin_handlers: true)
    wait_succeeded(bridge, n)
    elapsed = monotonic - t0
    bridge.shutdown(0)
    n / elapsed
  end
end

def ruby_throughput(n)
  Dir.mktmpdir("tasker-rb-bench") do |dir|
    url = "sqlite://#{dir}/bench.db"
    seed(url, n)
    handler = Tasker::FunctionHandler.new("noop") { {} }
    t0 = monotonic
    bridge = Tasker::Bridge.new(database_url: url, namespaces: ["rbbench"], concurrency: CONCURRENCY)
    worker = Tasker::Worker.new(handlers: [handler], concurrency: CONCURRENCY, bridge: bridge)
    worker.start
    wait_succeeded(bridge, n)
    elapsed = monotonic - t0
    worker.stop
    n / elapsed
  end
end

[1, 64].each do |batch|
  puts format("ruby_us_per_step_batch%d=%.2f", batch, bridge_loop(batch, LOOP_STEPS))
  $stdout.flush
end
puts format("ruby_worker_us_per_step=%.2f", worker_loop(LOOP_STEPS / 2))
$stdout.flush
# Alternate the two sides and keep each side's best run, so a slow moment of
# the machine does not decide the comparison.
runs = QUICK ? 1 : 3
rust = 0.0
ruby = 0.0
runs.times do
  rust = [rust, rust_throughput(TASKS)].max
  ruby = [ruby, ruby_throughput(TASKS)].max
end
puts format("ruby_rust_steps_per_s=%.0f", rust)
puts format("ruby_worker_steps_per_s=%.0f", ruby)
puts format("ruby_throughput_share_of_rust=%.2f", ruby / rust)
