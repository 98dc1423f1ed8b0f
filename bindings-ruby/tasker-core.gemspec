# frozen_string_literal: true

# Builds the precompiled platform gem. Run `gem build` in a staging folder that
# holds this file, lib/ and the native library at lib/tasker/<ruby minor>/tasker_native.so
# (scripts/test-ruby stages it): nothing is compiled at install time, and the gem
# has no runtime dependencies.
require_relative "lib/tasker/version"

native = Dir[File.join(__dir__, "lib", "tasker", "*", "tasker_native.so")]
minors = native.map { |f| File.basename(File.dirname(f)) }.grep(/\A\d+\.\d+\z/).sort_by { |v| Gem::Version.new(v) }
if minors.empty?
  raise "no native library staged (lib/tasker/<ruby minor>/tasker_native.so): build it with scripts/test-ruby"
end

last = Gem::Version.new(minors.last).segments

Gem::Specification.new do |s|
  s.name = "tasker-core"
  s.version = Tasker::VERSION
  s.summary = "Tasker workflow runtime: write step handlers in Ruby, run them on the Rust core"
  s.description = "Ruby binding of Tasker: the polling contract (Tasker::Bridge), the handler API " \
                  "(Tasker::StepHandler, mixins Api, Decision, Batchable), Tasker::Worker, Tasker::Engine " \
                  "and Tasker::Client. Precompiled; no compiler needed at install."
  s.authors = ["Tasker contributors"]
  s.license = "MIT"
  s.homepage = "https://example.invalid/tasker"
  s.platform = Gem::Platform.local
  # A native library works only with the Ruby minor it was built for.
  s.required_ruby_version = [">= #{minors.first}", "< #{last[0]}.#{last[1] + 1}.dev"]
  s.files = Dir.chdir(__dir__) { Dir["lib/**/*.rb"] + Dir["lib/tasker/*/tasker_native.so"] + ["README.md"] }
  s.require_paths = ["lib"]
  s.metadata["tasker_native_ruby_versions"] = minors.join(",")
end
