# frozen_string_literal: true

module Tasker
  # The gem's version (the same as the workspace's crates).
  VERSION = "0.1.0"
end
