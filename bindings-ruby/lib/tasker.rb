# frozen_string_literal: true

# Tasker for Ruby: write step handlers in Ruby, run them on the Tasker core.
#
#   require "tasker"
#
#   class Square < Tasker::StepHandler
#     def call(context)
#       parent = context.dependency_results.values.first
#       n = parent ? parent["value"] : context.input("n")
#       success(result: { "value" => n * n })
#     end
#   end
#
#   Tasker::Engine.open(templates: ["examples"], handlers: { "square" => Square }) do |engine|
#     task = engine.run("examples", "linear", { "n" => 6 })
#   end
#
# See README.md of the gem for the full API.

require "json"
require "logger"

require_relative "tasker/version"
require_relative "tasker/errors"
require_relative "tasker/native"
require_relative "tasker/logging"
require_relative "tasker/result"
require_relative "tasker/bridge"
require_relative "tasker/events"
require_relative "tasker/context"
require_relative "tasker/handler"
require_relative "tasker/mixins"
require_relative "tasker/registry"
require_relative "tasker/worker"
require_relative "tasker/engine"
