# frozen_string_literal: true

require "json"
require "logger"

module Tasker
  @logger = nil
  @logger_lock = Mutex.new

  class << self
    # The Logger every Tasker component writes to (default: $stderr at INFO,
    # progname "tasker"). The core's records arrive with progname "tasker.core",
    # handlers' (context.logger) with "tasker.handler".
    def logger
      @logger || @logger_lock.synchronize { @logger ||= Logger.new($stderr, level: Logger::INFO, progname: "tasker") }
    end

    attr_writer :logger

    # Starts buffering the core's log records (the contract's
    # install_log_forwarding; Worker, Engine and Client call it for you).
    def install_log_forwarding(level = "info")
      Native.install_log_forwarding(level.to_s)
    end

    # Takes up to `max` buffered records of the core, oldest first: Hashes
    # {"level", "target", "message", "fields", "timestamp_ms"} (the contract's
    # drain_log_records; Tasker::Logging.drain hands them to Tasker.logger instead).
    def drain_log_records(max = 1000)
      JSON.parse(Native.drain_log_records(Integer(max)))
    end
  end

  # Forwards the core's tracing output (buffered in Rust) to Tasker.logger. The
  # worker's poller drains it after each poll; Engine and Client after each call.
  module Logging
    LEVELS = {
      "trace" => Logger::DEBUG, "debug" => Logger::DEBUG, "info" => Logger::INFO,
      "warn" => Logger::WARN, "error" => Logger::ERROR
    }.freeze

    @install_lock = Mutex.new
    @drain_lock = Mutex.new
    @installed = false

    class << self
      # Starts collecting the core's records (once per process; the level is
      # fixed then). `level`: "trace", "debug", "info", "warn", "error" or a
      # filter directive; by default the level of Tasker.logger. RUST_LOG wins
      # when set.
      def install(level = nil)
        @install_lock.synchronize do
          return if @installed

          Native.install_log_forwarding((level || level_name(Tasker.logger.level)).to_s)
          @installed = true
        end
      end

      def installed?
        @installed
      end

      # Hands the collected records to Tasker.logger; returns how many there were.
      def drain(max = 1000)
        return 0 unless @installed

        records = @drain_lock.synchronize { JSON.parse(Native.drain_log_records(max)) }
        log = Tasker.logger
        records.each do |rec|
          severity = LEVELS.fetch(rec["level"].to_s, Logger::INFO)
          next if severity < log.level

          message = rec["message"].to_s
          fields = rec["fields"]
          message = "#{message} #{fields.map { |k, v| "#{k}=#{v}" }.join(' ')}" if fields.is_a?(Hash) && !fields.empty?
          log.add(severity, "#{rec['target']}: #{message}", "tasker.core")
        end
        records.size
      end

      private

      def level_name(level)
        case level
        when Logger::DEBUG then "debug"
        when Logger::INFO then "info"
        when Logger::WARN then "warn"
        else "error"
        end
      end
    end
  end
end
