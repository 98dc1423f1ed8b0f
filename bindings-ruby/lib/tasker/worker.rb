# frozen_string_literal: true

module Tasker
  # Runs Ruby handlers for the steps of some namespaces.
  #
  # Threads:
  # - one poller calls bridge.poll_step_events(free slots, poll_timeout_ms) (the
  #   GVL is released while it waits), hands each event to the handler pool and
  #   forwards the core's log records to Tasker.logger;
  # - `concurrency` handler threads run the handlers;
  # - one completer sends results in batches (everything waiting, one
  #   complete_step_events call) and interrupts handlers still running past
  #   their step's deadline (see `interrupt_overdue`).
  #
  # A slot is busy from the poll that claimed the step until its result is sent
  # and its handler has returned, so the worker never claims more steps than it
  # can run.
  #
  #   worker = Tasker::Worker.new(database_url: "postgres://...", namespaces: ["billing"],
  #                               handlers: [ChargeCard, Refund], concurrency: 8)
  #   worker.run # until SIGTERM / SIGINT or worker.stop, then drains
  class Worker
    # Past its deadline plus this, a still-running handler is interrupted.
    INTERRUPT_GRACE_MS = 200
    # How long the completer waits for handlers still running before it sends the
    # results it has (results of one poll usually share one write).
    COMPLETION_LINGER_S = 0.001

    # One claimed step on its way through the worker.
    class InFlight
      attr_accessor :event_id, :ctx, :resolved, :started, :thread, :running, :settled, :sent, :handler_done,
                    :interrupted

      def initialize(event_id)
        @event_id = event_id
        @started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        @running = @settled = @sent = @handler_done = @interrupted = false
      end
    end

    # The handler threads' queue. Every wake-up of a thread costs a GVL
    # hand-over, so a push wakes one idle thread, and a thread taking an item
    # while more wait wakes the next one: with handlers that block on I/O every
    # item still gets a thread at once (the woken one runs as soon as the
    # GVL is free), while a run of quick handlers is served by the threads
    # already running instead of waking one thread per item.
    class JobQueue
      def initialize
        @items = []
        @lock = Mutex.new
        @ready = ConditionVariable.new
        @sleeping = 0
        @woken = 0
        @closed = false
      end

      # Adds items (raises ClosedQueueError after #close).
      def push(*items)
        @lock.synchronize do
          raise ClosedQueueError, "the worker is stopping" if @closed

          @items.concat(items)
          wake_one
        end
        self
      end
      alias << push

      # The next item, waiting for one; nil once closed.
      def pop
        @lock.synchronize do
          loop do
            unless @items.empty?
              item = @items.shift
              wake_one unless @items.empty?
              return item
            end
            return nil if @closed

            @sleeping += 1
            @ready.wait(@lock)
            @sleeping -= 1
            @woken -= 1 if @woken.positive?
          end
        end
      end

      # Stops the threads; items not started yet are dropped (by then the
      # bridge has released their steps).
      def close
        @lock.synchronize do
          @closed = true
          @items.clear
          @ready.broadcast
        end
      end

      private

      # Holding @lock: one sleeping thread, unless one is already on its way.
      def wake_one
        return unless @woken.zero? && @sleeping.positive?

        @woken += 1
        @ready.signal
      end
    end

    attr_reader :bridge, :concurrency, :namespaces, :registry, :drain_report, :poll_timeout_ms, :shutdown_grace_ms

    # `handlers`: an Array of handler classes / FunctionHandlers, a Hash
    # {callable => handler} or a HandlerRegistry. A step's handler.callable is
    # looked up there first, then in the process-wide registrations
    # (Tasker.handler, Tasker.register), then as a constant path.
    #
    # `interrupt_overdue`: a handler still running INTERRUPT_GRACE_MS after its
    # step's deadline (its step already failed as `timeout`) gets a
    # Tasker::HandlerTimeout raised in its thread, freeing the slot; false
    # leaves it running until it returns.
    #
    # Other options go to the Bridge (templates:, wakeup_mode:, poll_interval_ms:, ...).
    def initialize(database_url: nil, namespaces: [], handlers: nil, concurrency: 8, templates: nil,
                   poll_timeout_ms: 200, shutdown_grace_ms: 30_000, log_level: nil, interrupt_overdue: true,
                   bridge: nil, **bridge_options)
      @concurrency = Integer(concurrency)
      raise ArgumentError, "concurrency must be at least 1" if @concurrency < 1

      @namespaces = Array(namespaces).map(&:to_s)
      @poll_timeout_ms = Integer(poll_timeout_ms)
      @shutdown_grace_ms = Integer(shutdown_grace_ms)
      @interrupt_overdue = interrupt_overdue
      @registry = handlers.is_a?(HandlerRegistry) ? handlers : HandlerRegistry.new(handlers)
      if bridge.nil?
        url = database_url || ENV["TASKER_DATABASE_URL"] || "sqlite://tasker.db"
        Logging.install(log_level)
        bridge = Bridge.new(database_url: url, namespaces: @namespaces, concurrency: @concurrency,
                            templates: templates, **bridge_options)
      end
      @bridge = bridge
      @drain_report = nil

      @lock = Mutex.new
      # The poller waits on @slots_freed (for free slots), the completer on
      # @results_ready (for results): each is woken only by what it waits for,
      # since every wake-up costs a GVL hand-over.
      @slots_freed = ConditionVariable.new
      @results_ready = ConditionVariable.new
      @inflight = {}
      @results = []
      @jobs = JobQueue.new
      @stop_signal = Thread::Queue.new
      @done = Thread::Queue.new
      @stop_polling = false
      @stop_completer = false
      @started = false
      @shut_down = false
      @lifecycle = Mutex.new
      @run_thread = nil
    end

    # -- lifecycle ----------------------------------------------------------

    # Starts the threads and returns at once (#stop drains).
    def start
      @lifecycle.synchronize do
        raise Tasker::Error, "this worker has been stopped; create a new one" if @shut_down
        return self if @started

        @started = true
        @handler_threads = Array.new(@concurrency) do |i|
          Thread.new { handler_loop }.tap { |t| t.name = "tasker-handler-#{i}" }
        end
        @completer = Thread.new { complete_loop }.tap { |t| t.name = "tasker-completer" }
        @poller = Thread.new { poll_loop }.tap { |t| t.name = "tasker-poller" }
      end
      self
    end

    # Runs until SIGTERM / SIGINT (when called on the main thread) or #stop,
    # then drains gracefully: no new claims, running handlers get
    # shutdown_grace_ms to finish, the rest is handed back. Returns the drain report.
    def run
      start
      @run_thread = Thread.current
      previous = {}
      if Thread.current == Thread.main
        %w[TERM INT].each do |sig|
          previous[sig] = Signal.trap(sig) { @stop_signal << sig }
        end
      end
      signal = @stop_signal.pop
      Tasker.logger.info("tasker.worker: stopping (#{signal.is_a?(String) ? "SIG#{signal}" : 'stop requested'})")
      shutdown!
    ensure
      shutdown!
      previous&.each { |sig, handler| Signal.trap(sig, handler || "DEFAULT") }
      @run_thread = nil
    end

    # Asks the worker to stop. When #run runs in another thread it drains and
    # #stop waits for it (unless `wait: false`); otherwise the drain happens here.
    def stop(wait: true)
      @stop_signal << :stop
      me = Thread.current
      wait = false if @handler_threads&.include?(me) # a handler stopping its own worker
      run_thread = @run_thread
      if run_thread && run_thread != me
        if wait
          @done.pop
          @done << true
        end
        return @drain_report
      end
      if wait
        shutdown!
      else
        Thread.new { shutdown! }
      end
      @drain_report
    end
    alias close stop

    # The bridge's counters plus what runs in Ruby now ("ruby_in_flight").
    def status
      bridge.worker_status.merge("ruby_in_flight" => in_flight)
    end

    # Steps claimed and not yet finished here.
    def in_flight
      @lock.synchronize { @inflight.size }
    end

    def stopped?
      @shut_down
    end

    # -- shutdown -------------------------------------------------------------

    def shutdown!
      started = nil
      draining_elsewhere = @lifecycle.synchronize do
        if @shut_down
          true
        else
          @shut_down = true
          started = @started
          false
        end
      end
      if draining_elsewhere
        # Another thread drains (or has drained): wait for it, unless this is a
        # handler thread, which the drain itself may be waiting for.
        unless @handler_threads&.include?(Thread.current)
          @done.pop
          @done << true
        end
        return @drain_report
      end
      @stop_signal << :stop
      begin
        @lock.synchronize do
          @stop_polling = true
          @slots_freed.broadcast
        end
        # The bridge stops claiming and waits for the results of claimed steps
        # (the completer keeps sending them meanwhile), then releases the rest.
        @drain_report = bridge_shutdown
        if started
          @poller.join
          @lock.synchronize do
            @stop_completer = true
            @results_ready.broadcast
          end
          @completer.join
          @jobs.close
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 1.0
          @handler_threads.each do |t|
            t.join([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max)
          end
        end
        Logging.drain
        Tasker.logger.info("tasker.worker: stopped (drained #{@drain_report['drained']}, " \
                           "released #{@drain_report['released']})")
      ensure
        @done << true
      end
      @drain_report
    end
    private :shutdown!

    private

    def bridge_shutdown
      bridge.shutdown(@shutdown_grace_ms)
    rescue WorkerClosed, ForkedProcess => e
      Tasker.logger.debug("tasker.worker: bridge already closed: #{e.message}")
      { "drained" => 0, "released" => 0 }
    end

    # -- polling and dispatch -------------------------------------------------

    def poll_loop
      backoff = 0.1
      loop do
        free = @lock.synchronize do
          break nil if @stop_polling

          n = @concurrency - @inflight.size
          @slots_freed.wait(@lock, 0.2) if n <= 0
          n
        end
        break if free.nil?
        next Logging.drain if free <= 0

        begin
          events = bridge.poll_step_events(free, @poll_timeout_ms)
          backoff = 0.1
        rescue WorkerClosed, ForkedProcess
          break
        rescue StandardError => e
          Tasker.logger.error("tasker.worker: polling failed (#{e.class}: #{e.message}); retrying in #{backoff}s")
          @lock.synchronize { @slots_freed.wait(@lock, backoff) unless @stop_polling }
          backoff = [backoff * 2, 5.0].min
          next
        end
        events.each { |event| dispatch(event) }
        Logging.drain
      end
      Logging.drain
    rescue Exception => e # rubocop:disable Lint/RescueException
      Tasker.logger.fatal("tasker.worker: the poller died: #{e.class}: #{e.message}")
      raise
    end

    def dispatch(event)
      item = InFlight.new(event["event_id"].to_s)
      @lock.synchronize { @inflight[item.event_id] = item }
      begin
        item.ctx = StepContext.new(event, bridge)
        resolved = @registry.resolve(item.ctx.handler_callable, item.ctx.handler_method, item.ctx.config)
      rescue StandardError, ScriptError => e
        Tasker.logger.error("tasker.worker: cannot start step event #{item.event_id}: #{e.class}: #{e.message}")
        settle(item, Tasker.failure_from_exception(e))
        return handler_finished(item)
      end
      if resolved.is_a?(StepResult)
        settle(item, resolved)
        return handler_finished(item)
      end
      item.resolved = resolved
      @jobs << item
    rescue ClosedQueueError => e
      settle(item, Tasker.failure_from_exception(e))
      handler_finished(item)
    end

    # -- running handlers -----------------------------------------------------

    def handler_loop
      Thread.handle_interrupt(HandlerTimeout => :never) do
        while (item = @jobs.pop)
          begin
            run_item(item)
          rescue Exception => e # rubocop:disable Lint/RescueException
            Tasker.logger.error("tasker.worker: handler thread error: #{e.class}: #{e.message}")
            settle(item, Tasker.failure_from_exception(e))
            handler_finished(item)
          end
        end
      end
    end

    def run_item(item)
      outcome = nil
      timed_out = false
      @lock.synchronize do
        item.thread = Thread.current
        item.running = true
      end
      begin
        Thread.handle_interrupt(HandlerTimeout => :immediate) do
          value = item.resolved.fn.call(item.ctx)
          outcome = item.resolved.plain_returns && !value.is_a?(StepResult) ? Tasker.success(result: value) : value
        end
      rescue HandlerTimeout
        timed_out = true
      rescue Exception => e # rubocop:disable Lint/RescueException -- the failure table covers every exception
        outcome = Tasker.failure_from_exception(e)
      ensure
        @lock.synchronize do
          item.running = false
          item.thread = nil
        end
        discard_pending_timeout
      end
      if timed_out
        ctx = item.ctx
        outcome = Tasker.failure(message: "handler exceeded its timeout of #{ctx.timeout_ms} ms and was interrupted",
                                 error_type: "timeout")
      end
      settle(item, outcome)
    ensure
      handler_finished(item)
    end

    # A HandlerTimeout raised just as the handler returned is still pending:
    # drop it here so it cannot hit the next handler.
    def discard_pending_timeout
      return unless Thread.pending_interrupt?

      Thread.handle_interrupt(HandlerTimeout => :immediate) { nil }
    rescue HandlerTimeout
      nil
    end

    # -- results --------------------------------------------------------------

    # Records the one result of an event (the first of handler result and timeout).
    def settle(item, outcome)
      @lock.synchronize do
        return false if item.settled

        item.settled = true
      end
      elapsed_ms = ((Process.clock_gettime(Process::CLOCK_MONOTONIC) - item.started) * 1000).to_i
      text = Tasker.encode_result(item.event_id, outcome, elapsed_ms)
      @lock.synchronize do
        @results << [item, text]
        @results_ready.signal
      end
      true
    end

    def handler_finished(item)
      @lock.synchronize do
        item.handler_done = true
        maybe_release(item)
      end
    end

    # Holding @lock. Frees the item's slot once its result is sent and its
    # handler has returned; wakes the poller unless the caller does it once for
    # a whole batch.
    def maybe_release(item, wake: true)
      return false unless item.handler_done && item.sent && @inflight[item.event_id].equal?(item)

      @inflight.delete(item.event_id)
      @slots_freed.signal if wake
      true
    end

    def complete_loop
      loop do
        batch = @lock.synchronize do
          while @results.empty? && !@stop_completer
            @results_ready.wait(@lock, check_deadlines)
          end
          linger_for_running_handlers
          taken = @results
          @results = []
          taken
        end
        break if batch.empty? # only when stopping with nothing left

        send_results(batch)
      end
    rescue Exception => e # rubocop:disable Lint/RescueException
      Tasker.logger.fatal("tasker.worker: the completer died: #{e.class}: #{e.message}")
      raise
    end

    # Holding @lock, with results waiting: handlers of the same poll usually finish
    # together, so wait up to COMPLETION_LINGER_S for the ones still running and
    # send their results in the same write.
    def linger_for_running_handlers
      return if @stop_completer

      until_time = Process.clock_gettime(Process::CLOCK_MONOTONIC) + COMPLETION_LINGER_S
      while @inflight.each_value.any? { |item| !item.settled }
        left = until_time - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if left <= 0

        @results_ready.wait(@lock, left)
      end
    end

    # Holding @lock: interrupts handlers running past their deadline plus the
    # grace; returns seconds until the next check.
    def check_deadlines
      return 0.1 unless @interrupt_overdue

      now = Tasker.now_ms
      nearest = 0.1
      @inflight.each_value do |item|
        next unless item.running && !item.interrupted && item.thread

        deadline = item.ctx.deadline_ms
        next unless deadline.positive?

        left = deadline + INTERRUPT_GRACE_MS - now
        if left <= 0
          item.interrupted = true
          Tasker.logger.warn("tasker.worker: interrupting the handler of step #{item.ctx.step_name} " \
                             "(task #{item.ctx.task_uuid}): past its deadline (timeout #{item.ctx.timeout_ms} ms)")
          item.thread.raise(HandlerTimeout, "step #{item.ctx.step_name} is past its deadline")
        else
          nearest = [nearest, left / 1000.0].min
        end
      end
      [nearest, 0.005].max
    end

    def send_results(batch)
      payload = "[#{batch.map { |_, text| text }.join(',')}]"
      delay = 0.1
      attempt = 0
      begin
        attempt += 1
        report = bridge.complete_step_events_json(payload)
        (report["invalid"] || []).each do |inv|
          Tasker.logger.warn("tasker.worker: result of event #{inv['event_id']} recorded as invalid_result: " \
                             "#{inv['message']}")
        end
        (report["rejected"] || []).each do |rej|
          # A result after the step's deadline, or after a drain released it:
          # the core had already decided.
          Tasker.logger.info("tasker.worker: result of event #{rej['event_id']} not recorded: #{rej['reason']}")
        end
      rescue WorkerClosed, ForkedProcess => e
        Tasker.logger.info("tasker.worker: #{batch.size} result(s) not sent, the bridge is closed (#{e.message})")
      rescue StandardError => e
        if attempt < 4
          Tasker.logger.warn("tasker.worker: sending #{batch.size} result(s) failed (#{e.message}); retrying")
          sleep(delay)
          delay *= 3
          retry
        end
        Tasker.logger.error("tasker.worker: sending #{batch.size} result(s) failed (#{e.message}); their steps " \
                            "return to the queue when their leases expire")
      ensure
        @lock.synchronize do
          freed = batch.count do |item, _|
            item.sent = true
            maybe_release(item, wake: false)
          end
          @slots_freed.signal if freed.positive?
        end
      end
    end
  end
end
