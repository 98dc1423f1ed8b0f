# frozen_string_literal: true

# Runs the demo's Ruby step (namespace fulfilment.ruby) on the database named by
# TASKER_DATABASE_URL until SIGTERM.

require_relative "handlers"

Tasker::Worker.new(namespaces: ["fulfilment.ruby"], handlers: DemoHandlers::HANDLERS, poll_interval_ms: 50).run
