# frozen_string_literal: true

require "json"

module Tasker
  # Error type recorded for a result that cannot be serialised or breaks the contract.
  INVALID_RESULT = "invalid_result"

  # Why an attempt failed (the `error` member of a step result).
  class StepError
    attr_reader :message, :error_type, :retryable, :retry_after_ms, :code, :backtrace

    def initialize(message:, error_type: "handler_error", retryable: true, retry_after_ms: nil, code: nil,
                   backtrace: nil)
      @message = message.to_s
      @error_type = error_type.to_s
      @retryable = retryable ? true : false
      @retry_after_ms = retry_after_ms
      @code = code&.to_s
      @backtrace = backtrace
    end

    alias retryable? retryable

    # The retry hint in seconds, or nil.
    def retry_after
      retry_after_ms && retry_after_ms / 1000.0
    end

    # The `error` member as sent.
    def to_h
      h = { "message" => message, "error_type" => error_type, "retryable" => retryable }
      h["retry_after_ms"] = retry_after_ms unless retry_after_ms.nil?
      h["code"] = code unless code.nil?
      h["backtrace"] = backtrace unless backtrace.nil?
      h
    end

    def ==(other)
      other.is_a?(StepError) && to_h == other.to_h
    end

    def inspect
      "#<Tasker::StepError #{error_type} retryable=#{retryable} #{message.inspect}>"
    end
  end

  # One attempt's outcome. Build it with Tasker.success / Tasker.failure (or a
  # handler's #success / #failure).
  class StepResult
    attr_reader :success, :result, :error, :metadata

    NO_METADATA = {}.freeze
    private_constant :NO_METADATA

    def initialize(success:, result: nil, error: nil, metadata: nil)
      @success = success
      @result = result
      @error = error
      @metadata = metadata.nil? || metadata.empty? ? NO_METADATA : metadata.to_h
    end

    def success?
      success == true
    end

    # The members of a step_result message, without event_id.
    def to_h
      h = { "success" => success, "result" => result }
      h["error"] = error.to_h unless error.nil?
      h["metadata"] = metadata unless metadata.empty?
      h
    end

    def ==(other)
      other.is_a?(StepResult) && to_h == other.to_h
    end

    def inspect
      success? ? "#<Tasker::StepResult success #{result.inspect}>" : "#<Tasker::StepResult failure #{error.inspect}>"
    end

    # A StepResult from a step_result message (a Hash as parsed from JSON).
    def self.from_h(message)
      err = message["error"]
      error = if err
                StepError.new(message: err["message"], error_type: err["error_type"], retryable: err["retryable"],
                              retry_after_ms: err["retry_after_ms"], code: err["code"], backtrace: err["backtrace"])
              end
      new(success: message["success"], result: message["result"], error: error, metadata: message["metadata"])
    end
  end

  UNSET = Object.new.freeze
  private_constant :UNSET

  module_function

  # A successful attempt carrying `result` (children see it as a dependency
  # result): `success(result: {...})`, or `success({...})`.
  def success(value = UNSET, result: UNSET, metadata: nil)
    if !value.equal?(UNSET) && !result.equal?(UNSET)
      raise ArgumentError, "pass the result once: success(result: ...) or success(value)"
    end

    result = value unless value.equal?(UNSET)
    result = nil if result.equal?(UNSET)
    StepResult.new(success: true, result: result, metadata: metadata)
  end

  # A failed attempt. Retryable unless `retryable: false`; `retry_after` (seconds)
  # asks for at least that long before the next attempt and only applies to a
  # retryable failure (it is dropped from a permanent one, as in the Rust core).
  def failure(message:, error_type: "handler_error", retryable: true, retry_after: nil, code: nil, metadata: nil)
    retry_after_ms = retryable && !retry_after.nil? ? seconds_to_ms(retry_after) : nil
    StepResult.new(
      success: false,
      error: StepError.new(message: message, error_type: error_type, retryable: retryable,
                           retry_after_ms: retry_after_ms, code: code),
      metadata: metadata
    )
  end

  # Seconds (a number) to whole milliseconds, rounded up so a hint is never shortened.
  def seconds_to_ms(seconds)
    unless seconds.is_a?(Numeric) && seconds.real? && seconds.finite? && seconds >= 0
      raise ArgumentError, "retry_after must be a finite number of seconds >= 0, got #{seconds.inspect}"
    end

    (seconds * 1000 - 1e-9).ceil.clamp(0, nil)
  end

  # The failure-table row for an exception a handler raised. Tasker::PermanentError
  # and Tasker::RetryableError (and subclasses) keep their retryability, code,
  # metadata and retry hint; anything else is retryable. error_type is the class
  # name without its namespace (`PermanentError`, `ReadTimeout`), as in Python
  # and TypeScript; the message and backtrace are recorded.
  def failure_from_exception(exc)
    message = exc.message.to_s
    message = exc.class.name.to_s if message.empty?
    type = (exc.class.name || exc.class.ancestors.find(&:name)&.name || "handler_error").split("::").last
    trace = format_backtrace(exc)
    if exc.is_a?(StepFailure)
      retryable = exc.retryable?
      hint = retryable && !exc.retry_after.nil? ? seconds_to_ms(exc.retry_after) : nil
      return StepResult.new(
        success: false,
        error: StepError.new(message: message, error_type: type, retryable: retryable, retry_after_ms: hint,
                             code: exc.code, backtrace: trace),
        metadata: exc.metadata
      )
    end
    StepResult.new(success: false,
                   error: StepError.new(message: message, error_type: type, retryable: true, backtrace: trace))
  end

  # "Class: message" then the backtrace, with the causes.
  def format_backtrace(exc)
    lines = []
    seen = {}
    while exc && !seen[exc.object_id]
      seen[exc.object_id] = true
      lines << (lines.empty? ? "" : "Caused by: ") + "#{exc.class.name}: #{exc.message}"
      (exc.backtrace || []).each { |l| lines << "    #{l}" }
      exc = exc.cause
    end
    lines.join("\n")
  end

  # A step_result message for `event_id` as JSON text.
  #
  # `outcome` should be a StepResult. Anything else, or a result that cannot be
  # serialised as JSON (objects, NaN, non-string keys, integers beyond 64 bits,
  # broken UTF-8 ...), becomes a permanent invalid_result failure naming the
  # problem: the step is never lost and the batch it travels in is never spoiled.
  def encode_result(event_id, outcome, execution_time_ms = nil)
    unless outcome.is_a?(StepResult)
      return invalid_result_json(
        event_id,
        "handler returned #{outcome.class}, expected a Tasker::StepResult (return success(...) or failure(...))",
        execution_time_ms
      )
    end
    unless [true, false].include?(outcome.success)
      return invalid_result_json(event_id, "`success` must be true or false", execution_time_ms)
    end
    if outcome.success && outcome.error
      return invalid_result_json(event_id, "a success must not carry an error", execution_time_ms)
    end
    if !outcome.success && outcome.error.nil?
      return invalid_result_json(event_id, "a failure must carry an error", execution_time_ms)
    end

    msg = outcome.to_h
    msg["event_id"] = event_id
    msg["execution_time_ms"] = [execution_time_ms.to_i, 0].max unless execution_time_ms.nil?
    # The envelope and the error are built here from strings and integers: only
    # what the handler handed over needs the walk.
    if JsonCheck.plain?(outcome.result) && (outcome.metadata.empty? || JsonCheck.plain?(outcome.metadata))
      begin
        return JsonCheck.generate(msg)
      rescue JSON::JSONError, EncodingError, SystemStackError => e
        failed = e
      end
    end
    problem = JsonCheck.problem(outcome.result, "$.result") ||
              JsonCheck.problem(outcome.metadata, "$.metadata") || failed&.message || "not JSON data"
    which = outcome.success ? "result" : "error or metadata"
    invalid_result_json(event_id, "the #{which} cannot be serialised as JSON: #{problem[0, 1000]}", execution_time_ms)
  end

  # An invalid_result failure of `event_id` as step_result JSON text.
  def invalid_result_json(event_id, problem, execution_time_ms = nil)
    msg = {
      "event_id" => event_id,
      "success" => false,
      "result" => nil,
      "error" => { "message" => problem.to_s.scrub, "error_type" => INVALID_RESULT, "retryable" => false }
    }
    msg["execution_time_ms"] = [execution_time_ms.to_i, 0].max unless execution_time_ms.nil?
    JSON.generate(msg)
  end

  # What JSON can carry exactly. Ruby's JSON would write any object through its
  # #to_s (a result of `#<Object:0x...>` would pass unnoticed): this walk refuses
  # what is not plain data instead.
  module JsonCheck
    INT_MIN = -(2**63)
    INT_MAX = (2**64) - 1
    # The core's JSON decoder refuses documents nested deeper than 128; a result
    # travels two levels down (in the batch array, in its message).
    MAX_DEPTH = 100

    module_function

    # The fast check: true when `value` holds only JSON data (strings are
    # checked by the generator, which raises on broken ones).
    def plain?(value, depth = 0)
      case value
      when String, Symbol, NilClass, TrueClass, FalseClass then true
      when Integer then value.bit_length < 64 || value.between?(INT_MIN, INT_MAX)
      when Float then value.finite?
      when Hash
        return false if depth >= MAX_DEPTH

        value.each_pair { |k, v| return false unless (String === k || Symbol === k) && plain?(v, depth + 1) }
        true
      when Array
        return false if depth >= MAX_DEPTH

        value.each { |v| return false unless plain?(v, depth + 1) }
        true
      else false
      end
    end

    # JSON text of plain data, through a generator state kept per thread
    # (creating one per call costs more than generating a small result).
    def generate(value)
      state = Thread.current[:tasker_json_state] ||= JSON::State.new(max_nesting: MAX_DEPTH + 2, allow_nan: false)
      state.generate(value)
    rescue Exception # rubocop:disable Lint/RescueException -- a failed run may leave the state's depth off
      Thread.current[:tasker_json_state] = nil
      raise
    end

    # nil when `value` is plain JSON data, else what is wrong (and where).
    def problem(value, path = "$", depth = 0)
      if depth >= MAX_DEPTH && (value.is_a?(Hash) || value.is_a?(Array))
        return "nesting deeper than #{MAX_DEPTH} at #{path}"
      end

      case value
      when nil, true, false
        nil
      when String
        string_problem(value, path)
      when Symbol
        string_problem(value.to_s, path)
      when Integer
        value.bit_length < 64 || value.between?(INT_MIN, INT_MAX) ? nil : "integer #{value} at #{path} does not fit in 64 bits"
      when Float
        value.finite? ? nil : "#{value} at #{path} is not a JSON number"
      when Hash
        value.each do |k, v|
          return "key #{k.inspect} at #{path} is not a string" unless k.is_a?(String) || k.is_a?(Symbol)

          key = k.to_s
          bad = string_problem(key, path)
          return bad if bad

          bad = problem(v, "#{path}.#{key}", depth + 1)
          return bad if bad
        end
        nil
      when Array
        value.each_with_index do |v, i|
          bad = problem(v, "#{path}[#{i}]", depth + 1)
          return bad if bad
        end
        nil
      else
        "#{value.class} at #{path} is not JSON data (use Hash, Array, String, Integer, Float, true, false, nil)"
      end
    end

    def string_problem(str, path)
      enc = str.encoding
      if enc == Encoding::UTF_8 || enc == Encoding::US_ASCII
        return str.valid_encoding? ? nil : "a string at #{path} is not valid UTF-8"
      end
      return nil if str.ascii_only?
      if enc == Encoding::BINARY
        return str.dup.force_encoding(Encoding::UTF_8).valid_encoding? ? nil : "a binary string at #{path} is not UTF-8"
      end

      str.encode(Encoding::UTF_8)
      nil
    rescue EncodingError
      "a string at #{path} cannot be converted from #{enc} to UTF-8"
    end
  end
end
