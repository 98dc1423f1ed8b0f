# frozen_string_literal: true

module Tasker
  # Base class of class-based handlers.
  #
  #   class Square < Tasker::StepHandler
  #     def call(context)
  #       n = context.input("n")
  #       success(result: { "value" => n * n })
  #     end
  #   end
  #
  # Return #success or #failure; raise Tasker::PermanentError or
  # Tasker::RetryableError to fail with those semantics (any other exception is
  # a retryable failure). A template's handler.method may name another public
  # method taking the context.
  #
  # One instance serves every step naming its callable (with the same
  # initialization), possibly from several threads at once: keep per-step state
  # in locals, not in instance variables. #config is the template's
  # handler.initialization.
  class StepHandler
    # The callable name this class registers under when passed in a list
    # (`handler_name "billing.charge"`); by default its class name.
    def self.handler_name(name = nil)
      @handler_name = name.to_s unless name.nil?
      @handler_name || self.name
    end

    attr_reader :config

    def initialize(config = {})
      @config = config || {}
    end

    # Runs one attempt. Override it.
    def call(_context)
      raise NotImplementedError, "#{self.class} must implement call(context)"
    end

    # A successful attempt carrying `result`: success(result: {...}) or success({...}).
    def success(*args, **kwargs)
      Tasker.success(*args, **kwargs)
    end

    # A failed attempt; retryable unless `retryable: false`. `retry_after` is in
    # seconds (recorded as retry_after_ms).
    def failure(message:, error_type: "handler_error", retryable: true, retry_after: nil, code: nil, metadata: nil)
      Tasker.failure(message: message, error_type: error_type, retryable: retryable, retry_after: retry_after,
                     code: code, metadata: metadata)
    end
  end

  # A handler written as a block: `Tasker.handler("square") { |context| ... }`.
  # A plain return value is a success with that result, a returned StepResult
  # is kept as is, raised exceptions follow the failure table.
  class FunctionHandler
    attr_reader :name, :block

    def initialize(name, &block)
      raise ArgumentError, "a handler needs a name, e.g. Tasker.handler(\"square\") { |context| ... }" if
        name.nil? || name.to_s.empty?
      raise ArgumentError, "Tasker.handler(#{name.inspect}) needs a block taking the context" unless block

      @name = name.to_s
      @block = block
    end

    # Runs the block (a plain value is returned as is; the worker wraps it).
    def call(context)
      @block.call(context)
    end

    def inspect
      "#<Tasker::FunctionHandler #{@name}>"
    end
  end

  @registry_lock = Mutex.new
  @registered = {}
  @registry_version = 0

  class << self
    # Defines a handler from a block and registers it under `name` for every
    # Worker and Engine of this process (handlers given to a Worker win over
    # these). Returns the handler, which can also be passed in `handlers:`.
    def handler(name, &block)
      fn = FunctionHandler.new(name, &block)
      register(fn.name, fn)
      fn
    end

    # Registers a handler (a StepHandler subclass, an object answering #call,
    # or a FunctionHandler) under a callable name for every Worker and Engine of
    # this process.
    def register(name, handler)
      raise ArgumentError, "a callable name must be a non-empty string" if name.nil? || name.to_s.empty?

      @registry_lock.synchronize do
        @registered[name.to_s] = handler
        @registry_version += 1
      end
      handler
    end

    # Bumped by every change of the process-wide registrations.
    attr_reader :registry_version

    # Removes a process-wide registration.
    def unregister(name)
      @registry_lock.synchronize do
        @registry_version += 1
        @registered.delete(name.to_s)
      end
    end

    # The process-wide registrations ({name => handler}, a copy).
    def registered_handlers
      @registry_lock.synchronize { @registered.dup }
    end
  end
end
