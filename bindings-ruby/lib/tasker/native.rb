# frozen_string_literal: true

# Loads the precompiled native library built for the running Ruby's minor
# version (lib/tasker/<major.minor>/tasker_native.so).
module Tasker
  # The Ruby minor version ("3.1") whose native library is loaded.
  RUBY_MINOR = RUBY_VERSION[/\A\d+\.\d+/]
end

begin
  require_relative "#{Tasker::RUBY_MINOR}/tasker_native"
rescue LoadError => e
  built = Dir[File.join(__dir__, "*", "tasker_native.{so,bundle}")].map { |f| File.basename(File.dirname(f)) }.sort
  raise LoadError, "tasker-core: no native library for Ruby #{Tasker::RUBY_MINOR} on #{RUBY_PLATFORM} " \
                   "(this gem has one for Ruby #{built.empty? ? 'none' : built.join(', ')}): #{e.message}"
end
