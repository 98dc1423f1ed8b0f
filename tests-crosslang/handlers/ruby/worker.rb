# frozen_string_literal: true

# The Ruby conformance worker: serves the given namespaces with the handlers of
# conformance_handlers.rb on the installed `tasker-core` gem. Arguments and the
# READY line are those every language's worker shares (tests-crosslang/README.md).

require "json"
require "optparse"
require_relative "conformance_handlers"

options = { namespaces: [], templates: [], broken: [], concurrency: 16, poll_interval_ms: 50, builtin: false }
OptionParser.new do |o|
  o.on("--database-url URL") { |v| options[:database_url] = v }
  o.on("--namespace NS") { |v| options[:namespaces] << v }
  o.on("--template FILE") { |v| options[:templates] << v }
  o.on("--concurrency N", Integer) { |v| options[:concurrency] = v }
  o.on("--poll-interval-ms MS", Integer) { |v| options[:poll_interval_ms] = v }
  o.on("--builtin-handlers") { options[:builtin] = true }
  o.on("--break CALLABLE") { |v| options[:broken] << v }
end.parse!
abort "--database-url and --namespace are required" if options[:database_url].nil? || options[:namespaces].empty?

chosen = ConformanceHandlers::HANDLERS.to_h { |h| [Tasker::HandlerRegistry.name_of(h), h] }
options[:broken].each do |name|
  variant = ConformanceHandlers::BROKEN[name] or
    abort "no broken variant of #{name.inspect} (known: #{ConformanceHandlers::BROKEN.keys.join(', ')})"
  chosen[name] = variant
end

worker = Tasker::Worker.new(
  database_url: options[:database_url],
  namespaces: options[:namespaces],
  handlers: chosen,
  concurrency: options[:concurrency],
  templates: options[:templates],
  shutdown_grace_ms: 5000,
  poll_interval_ms: options[:poll_interval_ms],
  builtin_handlers: options[:builtin]
)
ready = {
  "language" => ConformanceHandlers::LANGUAGE,
  "worker_id" => worker.bridge.worker_status["worker_id"],
  "runtime" => "ruby #{RUBY_VERSION}, tasker #{Tasker::VERSION}"
}
$stdout.puts "READY #{JSON.generate(ready)}"
$stdout.flush
worker.run
