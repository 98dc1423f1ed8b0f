# frozen_string_literal: true

require_relative "test_helper"

# Backpressure: an overloaded core refuses new tasks with a retryable error that
# says when to try again (Tasker::Overloaded#retry_after), and keeps every task it
# did accept.
class BackpressureTest < Minitest::Test
  include TestSupport

  def test_an_overloaded_client_raises_a_retryable_error_with_retry_after
    # No worker serves the namespace, so its ready steps pile up past a limit of 0.
    saved = ENV.to_h.slice("TASKER_BACKPRESSURE_MAX_READY_STEPS", "TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS")
    ENV["TASKER_BACKPRESSURE_MAX_READY_STEPS"] = "0"
    ENV["TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS"] = "20"
    with_db(:sqlite) do |url|
      client = Tasker::Client.new(database_url: url, templates: [TEMPLATES_DIR])
      begin
        created = []
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
        error = assert_raises(Tasker::Overloaded) do
          while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
            created << client.create_task("rbtests", "noop")["task_uuid"]
            sleep 0.005
          end
        end
        assert_equal "overloaded", error.code
        assert error.retryable?
        assert_in_delta 5.0, error.retry_after, 0.001
        assert_match(/rbtests/, error.message)
        refute_empty created, "the first task is accepted"
        created.each { |uuid| assert_equal "steps_in_process", client.get_task(uuid)["state"] }
      ensure
        client.close
      end
    end
  ensure
    %w[TASKER_BACKPRESSURE_MAX_READY_STEPS TASKER_BACKPRESSURE_SAMPLE_INTERVAL_MS].each { |k| ENV[k] = saved[k] }
  end

  def test_other_errors_are_not_retryable
    refute Tasker::TaskNotFound.new("x").retryable?
    assert_nil Tasker::TaskNotFound.new("x").retry_after
  end
end
