# frozen_string_literal: true

require "json"

module Tasker
  # Reads durable domain events as a named consumer, at least once
  # (tasker_core::events::subscriber one-to-one).
  #
  # `poll` returns the events after the last one this subscriber handed out (its
  # first poll starts after the consumer's acknowledged sequence); `ack(sequence)`
  # records that the consumer has handled everything up to `sequence`. A new
  # subscriber with the same consumer name (a restart, another process) gets again
  # whatever was not acknowledged; consumers with different names are independent.
  # `poll` waits in Rust with the GVL released, like Bridge#poll_step_events.
  #
  #   subscriber = Tasker::EventSubscriber.new(engine.bridge, "billing", name_pattern: "order.*")
  #   subscriber.each do |event|      # waits for events; never ends by itself
  #     handle(event["name"], event["payload"])
  #     subscriber.ack(event["sequence"])
  #   end
  class EventSubscriber
    include Enumerable

    # A subscriber on `bridge`'s database reading as `consumer`; with
    # `name_pattern`, only events whose name matches it (`*` matches anything).
    def initialize(bridge, consumer, name_pattern: nil)
      @native = Native::EventSubscriber.open(bridge.native, consumer.to_s, name_pattern&.to_s)
    end

    # The consumer's name.
    def consumer
      @native.consumer
    end

    # Waits up to `timeout_ms` for events; at most `max_events` stored events
    # ({"sequence", "event_id", "name", "payload", "mode", "task_uuid", ...}),
    # oldest first; [] when the time runs out.
    def poll(max_events: 100, timeout_ms: 1000)
      JSON.parse(@native.poll(Integer(max_events), Integer(timeout_ms)))
    end

    # Records that every event up to `sequence` was handled; returns the
    # consumer's stored offset (it never moves back).
    def ack(sequence)
      @native.ack(Integer(sequence))
    end

    # Starts again after the acknowledged sequence: the next poll redelivers what
    # was handed out and not acknowledged.
    def rewind
      @native.rewind
      nil
    end

    # Yields events one by one as they arrive, waiting between them (one second
    # per poll); ends only when the block breaks. Without a block, an Enumerator.
    def each
      return enum_for(:each) unless block_given?

      loop do
        poll(max_events: 100, timeout_ms: 1000).each { |event| yield event }
      end
    end
  end
end
