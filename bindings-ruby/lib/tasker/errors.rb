# frozen_string_literal: true

module Tasker
  # Base of every error the Tasker core raises. `#code` names the error code of
  # proto-contract/README.md ("worker_closed", "unknown_event", ...); match on it
  # to be exact, or rescue the subclass.
  class Error < StandardError
    CODE = "internal"

    # The error code of this class.
    def self.code
      self::CODE
    end

    # The error code of this error.
    def code
      self.class.code
    end

    # Whether calling again later may succeed (true only for Overloaded).
    def retryable?
      false
    end

    # Seconds to wait before calling again (Overloaded), or nil.
    def retry_after
      nil
    end

    # The class for an error code (Tasker::InternalError for an unknown one).
    def self.for_code(code)
      ERROR_CLASSES.fetch(code.to_s, InternalError)
    end
  end

  # Bad options (an unknown key, a bad database URL, a template that fails to load).
  class InvalidConfig < Error
    CODE = "invalid_config"
  end

  # A malformed argument: not JSON, not a UUID, a context the template's input
  # schema refuses, an unknown domain event mode.
  class InvalidInput < Error
    CODE = "invalid_input"
  end

  # The bridge was shut down.
  class WorkerClosed < Error
    CODE = "worker_closed"
  end

  # An event id the bridge does not hold (unknown, completed, timed out, released).
  class UnknownEvent < Error
    CODE = "unknown_event"
  end

  # No task with that UUID.
  class TaskNotFound < Error
    CODE = "task_not_found"
  end

  # No registered template matches namespace/name[@version].
  class TemplateNotFound < Error
    CODE = "template_not_found"
  end

  # wait_for_task reached its timeout before the task finished.
  class WaitTimedOut < Error
    CODE = "wait_timed_out"
  end

  # The database failed or could not be reached.
  class DatabaseError < Error
    CODE = "database"
  end

  # The core cannot take the work now (a full queue, a namespace with too many
  # ready steps, an unreachable database); call again after #retry_after seconds.
  class Overloaded < Error
    CODE = "overloaded"

    # Seconds to wait before calling again.
    attr_reader :retry_after

    def retryable?
      true
    end
  end

  # The bridge (or the process's runtime) was created before fork() and used in
  # the child: create a new one in the child.
  class ForkedProcess < Error
    CODE = "forked"
  end

  # A bug in the core, a Rust panic included.
  class InternalError < Error
    CODE = "internal"
  end

  # Error classes by code.
  ERROR_CLASSES = [
    InvalidConfig, InvalidInput, WorkerClosed, UnknownEvent, TaskNotFound, TemplateNotFound,
    WaitTimedOut, DatabaseError, Overloaded, ForkedProcess, InternalError
  ].to_h { |c| [c::CODE, c] }.freeze

  # Base of the exceptions a handler raises to fail its step on purpose. Raise
  # one of the two subclasses (or your own subclass of them): the recorded
  # error_type is the class name of the exception raised.
  class StepFailure < StandardError
    attr_reader :code, :metadata

    def initialize(message = nil, code: nil, metadata: nil)
      super(message)
      @code = code&.to_s
      @metadata = metadata ? metadata.to_h : {}
    end

    # Whether another attempt may succeed.
    def retryable?
      true
    end

    # Seconds to wait at least before the next attempt, or nil.
    def retry_after
      nil
    end
  end

  # The step failed and retrying cannot help: it is not retried.
  class PermanentError < StepFailure
    def retryable?
      false
    end
  end

  # The step failed but may succeed later: it is retried (up to the step's
  # max_attempts), not before `retry_after` seconds when given.
  class RetryableError < StepFailure
    attr_reader :retry_after

    def initialize(message = nil, retry_after: nil, code: nil, metadata: nil)
      super(message, code: code, metadata: metadata)
      unless retry_after.nil? || (retry_after.is_a?(Numeric) && retry_after.real? && retry_after >= 0 &&
                                  retry_after.finite?)
        raise ArgumentError, "retry_after must be a finite number of seconds >= 0, got #{retry_after.inspect}"
      end

      @retry_after = retry_after
    end
  end

  # Raised inside a handler that is still running after its step's deadline (the
  # step has already been failed as `timeout`); see Worker's `interrupt_overdue`.
  # Not a StandardError, so a handler's `rescue => e` does not swallow it.
  class HandlerTimeout < Exception # rubocop:disable Lint/InheritException
  end
end
