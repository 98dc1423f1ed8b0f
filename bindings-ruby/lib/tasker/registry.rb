# frozen_string_literal: true

require "json"

module Tasker
  # Maps a step event's handler.callable to something the worker can run:
  # handlers given to the worker first, then process-wide registrations
  # (Tasker.handler / Tasker.register), then a constant path (`Billing::Charge`,
  # which must be loaded or autoloadable).
  class HandlerRegistry
    # A runnable entry point: `fn.call(context)`, and whether a plain return
    # value counts as a success (block handlers) or must be a StepResult (class
    # handlers).
    Resolved = Struct.new(:fn, :plain_returns, :instance)

    CONSTANT_PATH = /\A(?:::)?[A-Z]\w*(?:::[A-Z]\w*)*\z/.freeze

    # `handlers`: nil, an Array of handler classes / FunctionHandlers, or a Hash
    # {callable => handler} (also as bare pairs: HandlerRegistry.new("square" => Square)).
    # `include_registered`: also look in the process-wide registrations.
    def initialize(handlers = nil, include_registered: true, **pairs)
      handlers = pairs if handlers.nil? && !pairs.empty?
      handlers = handlers.merge(pairs) if handlers.is_a?(Hash) && !pairs.empty?
      @explicit = {}
      @instances = {}
      @resolved = {}
      @constants = {}
      @lock = Mutex.new
      @include_registered = include_registered
      case handlers
      when nil then nil
      when Hash then handlers.each { |name, h| register(name, h) }
      when HandlerRegistry then raise ArgumentError, "pass the registry itself, not inside a list"
      else Array(handlers).each { |h| register(HandlerRegistry.name_of(h), h) }
      end
    end

    # The callable name a handler registers under when given in a list.
    def self.name_of(handler)
      case handler
      when FunctionHandler then handler.name
      when Class
        handler.respond_to?(:handler_name) ? handler.handler_name.to_s : handler.name.to_s
      else
        raise ArgumentError, "cannot tell the callable name of #{handler.inspect}: pass handlers as a Hash " \
                             "{\"callable\" => handler}"
      end
    end

    # Registers a handler class, a handler object or a FunctionHandler under
    # `name` (replacing a previous one).
    def register(name, handler)
      name = name.to_s
      raise ArgumentError, "a callable name must be a non-empty string" if name.empty?
      unless handler.is_a?(Class) || handler.respond_to?(:call)
        raise ArgumentError, "handler for #{name.inspect} must be a class or answer #call, got #{handler.inspect}"
      end

      @lock.synchronize do
        @explicit[name] = handler
        @instances.delete_if { |(n, _), _| n == name }
        @resolved.clear
      end
      self
    end

    # Callables registered here (and process-wide), sorted.
    def names
      names = @lock.synchronize { @explicit.keys }
      names |= Tasker.registered_handlers.keys if @include_registered
      names.sort
    end

    # The entry point for a step, or the failure to record (handler_not_found,
    # unknown_method).
    def resolve(callable, method, config)
      key = [callable, method, config]
      version = @include_registered ? Tasker.registry_version : 0
      hit = @lock.synchronize { @resolved[key] }
      return hit[0] if hit && hit[1] == version

      resolved = resolve_uncached(callable, method, config)
      if resolved.is_a?(Resolved)
        @lock.synchronize do
          @resolved.clear if @resolved.size >= 10_000
          @resolved[key] = [resolved, version]
        end
      end
      resolved
    end

    private

    def resolve_uncached(callable, method, config)
      target, why = lookup(callable.to_s)
      return not_found(callable, why) if target.nil?

      method = (method || "call").to_s
      if target.is_a?(Class)
        key = [callable, config]
        instance = @lock.synchronize { @instances[key] }
        unless instance
          made = instantiate(target, config)
          instance = @lock.synchronize { @instances[key] ||= made }
        end
        return entry_of(instance, callable, method, false)
      end
      if target.is_a?(FunctionHandler) || target.is_a?(Proc) || target.is_a?(Method)
        return unknown_method(callable, "is a block and has no method #{method.inspect}") unless method == "call"

        fn = target.is_a?(FunctionHandler) ? target.block : target
        return Resolved.new(fn, true, target)
      end
      entry_of(target, callable, method, false)
    end

    def lookup(callable)
      found = @lock.synchronize { @explicit[callable] || @constants[callable] }
      return [found, nil] if found

      if @include_registered
        found = Tasker.registered_handlers[callable]
        return [found, nil] if found
      end
      return [nil, nil] unless CONSTANT_PATH.match?(callable)

      begin
        obj = Object.const_get(callable)
      rescue NameError => e
        return [nil, "no constant #{callable} (#{e.message})"]
      rescue StandardError, ScriptError => e
        return [nil, "loading #{callable} failed: #{e.class}: #{e.message}"]
      end
      unless obj.is_a?(Class) || obj.respond_to?(:call)
        return [nil, "#{callable} is a #{obj.class}, neither a class nor an object answering #call"]
      end

      @lock.synchronize { @constants[callable] = obj }
      [obj, nil]
    end

    def instantiate(klass, config)
      init = klass.instance_method(:initialize)
      obj = init.arity.zero? ? klass.new : klass.new(config)
      # Whatever the constructor did, the template's initialization is the config.
      obj.instance_variable_set(:@config, config) unless obj.frozen?
      obj
    end

    HELPER_OWNERS = lambda do
      [Tasker::StepHandler, Tasker::Api, Tasker::Decision, Tasker::Batchable] + Object.ancestors
    end

    def entry_of(instance, callable, method, plain_returns)
      helpers = HELPER_OWNERS.call
      entry = nil
      if !method.start_with?("_") && instance.respond_to?(method)
        candidate = instance.method(method)
        owner = candidate.owner
        entry = candidate if method == "call" ? owner != Object && owner != Kernel : !helpers.include?(owner)
      end
      return unknown_method(callable, "(#{instance.class}) has no method #{method.inspect}") if entry.nil?

      Resolved.new(entry, plain_returns, instance)
    end

    def not_found(callable, why)
      message = "no handler for callable #{callable.inspect}; registered: #{names.empty? ? '(none)' : names.join(', ')}"
      message += " (constant lookup: #{why})" if why
      Tasker.failure(message: message, error_type: "handler_not_found", retryable: false)
    end

    def unknown_method(callable, what)
      Tasker.failure(message: "handler #{callable.inspect} #{what}", error_type: "unknown_method", retryable: false)
    end
  end
end
