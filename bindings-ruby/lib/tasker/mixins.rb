# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "time"
require "uri"

module Tasker
  # The request never got a response (refused, reset, DNS ...). Retryable.
  class ApiConnectionError < RetryableError
  end

  # The request timed out. Retryable.
  class ApiTimeoutError < RetryableError
  end

  # An HTTP response: #status, #headers (names lower-cased), #body, #text, #json.
  class ApiResponse
    attr_reader :status, :headers, :body, :url, :reason

    def initialize(status, headers, body, url, reason = "")
      @status = Integer(status)
      @headers = headers.to_h { |k, v| [k.to_s.downcase, v] }
      @body = body || ""
      @url = url.to_s
      @reason = reason.to_s
    end

    # A header by name (any case).
    def [](name)
      @headers[name.to_s.downcase]
    end

    def ok?
      status.between?(200, 299)
    end

    # The body as UTF-8 text.
    def text
      body.dup.force_encoding(Encoding::UTF_8).scrub
    end

    # The body parsed as JSON (nil when empty).
    def json
      body.empty? ? nil : JSON.parse(text)
    end

    # The Retry-After header in seconds (delta-seconds or an HTTP date), or nil.
    def retry_after
      Api.parse_retry_after(self["retry-after"])
    end

    # 408, 429 and 5xx are worth retrying; other 4xx are not.
    def retryable?
      [408, 429].include?(status) || status >= 500
    end

    def inspect
      "#<Tasker::ApiResponse #{status} #{url}>"
    end
  end

  # HTTP for a handler, on Net::HTTP (no gem dependency).
  #
  #   class FetchRate < Tasker::StepHandler
  #     include Tasker::Api
  #     base_url "https://rates.example"
  #     def call(context)
  #       response = get("/rates", params: { "currency" => context.input("currency") })
  #       response.ok? ? api_success(response) : api_failure(response)
  #     end
  #   end
  #
  # get/post/put/patch/delete return an ApiResponse whatever the status; a
  # connection error raises Tasker::ApiConnectionError, a timeout
  # Tasker::ApiTimeoutError (both retryable). #api_failure turns a failed
  # response into the failure the Rust core's Api trait gives: error_type
  # http_<status>; 408, 429 and 5xx retryable, other 4xx permanent; a
  # Retry-After (seconds or HTTP date) honoured.
  module Api
    CONNECTION_ERRORS = [
      SocketError, SystemCallError, IOError, EOFError, OpenSSL::SSL::SSLError, Net::HTTPBadResponse,
      Net::ProtocolError
    ].freeze
    TIMEOUT_ERRORS = [Net::OpenTimeout, Net::ReadTimeout, Net::WriteTimeout, Timeout::Error].freeze

    # Class-level settings, inherited by subclasses.
    module ClassMethods
      # Prefixed to relative paths.
      def base_url(url = nil)
        @base_url = url.to_s unless url.nil?
        return @base_url if defined?(@base_url) && @base_url

        superclass.respond_to?(:base_url) ? superclass.base_url : ""
      end

      # Headers sent with every request.
      def default_headers(headers = nil)
        @default_headers = headers.to_h { |k, v| [k.to_s, v.to_s] } unless headers.nil?
        return @default_headers if defined?(@default_headers) && @default_headers

        superclass.respond_to?(:default_headers) ? superclass.default_headers : {}
      end

      # Seconds for connecting and for each read or write (default 30).
      def timeout(seconds = nil)
        @timeout = seconds unless seconds.nil?
        return @timeout if defined?(@timeout) && @timeout

        superclass.respond_to?(:timeout) ? superclass.timeout : 30
      end
    end

    def self.included(base)
      super
      base.extend(ClassMethods)
    end

    # A Retry-After header value in seconds (delta-seconds or an HTTP date,
    # never negative); nil when absent or unreadable.
    def self.parse_retry_after(value, now: Time.now)
      return nil if value.nil?

      value = value.to_s.strip
      return nil if value.empty?
      return Integer(value, 10).to_f if value.match?(/\A\d+\z/)

      [Time.httpdate(value) - now, 0.0].max
    rescue ArgumentError
      nil
    end

    def get(path, **options)
      request(:get, path, **options)
    end

    def post(path, **options)
      request(:post, path, **options)
    end

    def put(path, **options)
      request(:put, path, **options)
    end

    def patch(path, **options)
      request(:patch, path, **options)
    end

    def delete(path, **options)
      request(:delete, path, **options)
    end

    # Sends a request: `params` (query), `json` (a body encoded as JSON), `form`
    # (a form-encoded body) or `body` (a String), `headers`, `timeout` (seconds).
    def request(method, path, params: nil, json: nil, form: nil, body: nil, headers: nil, timeout: nil)
      uri = api_uri(path, params)
      request = Net::HTTPGenericRequest.new(
        method.to_s.upcase, !(json.nil? && form.nil? && body.nil?), true, uri.request_uri
      )
      request["Accept"] = "application/json"
      api_class_setting(:default_headers, {}).each { |k, v| request[k] = v }
      if !json.nil?
        request.body = JSON.generate(json)
        request["Content-Type"] ||= "application/json"
      elsif !form.nil?
        request.body = URI.encode_www_form(form)
        request["Content-Type"] ||= "application/x-www-form-urlencoded"
      elsif !body.nil?
        request.body = body.to_s
      end
      (headers || {}).each { |k, v| request[k.to_s] = v.to_s }
      limit = timeout || api_class_setting(:timeout, 30)
      begin
        response = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https", open_timeout: limit,
                                                       read_timeout: limit, write_timeout: limit) do |http|
          http.request(request)
        end
      rescue *TIMEOUT_ERRORS => e
        raise ApiTimeoutError, "#{method.to_s.upcase} #{uri} timed out after #{limit}s (#{e.class})"
      rescue *CONNECTION_ERRORS => e
        raise ApiConnectionError, "#{method.to_s.upcase} #{uri} failed: #{e.class}: #{e.message}"
      end
      pairs = response.each_header.to_h
      ApiResponse.new(response.code, pairs, response.body, uri, response.message)
    end

    # A success carrying `result`, or the response's JSON body when not given.
    def api_success(response, result: nil, metadata: nil)
      meta = { "http_status" => response.status }.merge(metadata || {})
      Tasker.success(result: result.nil? ? response.json : result, metadata: meta)
    end

    # The failure for a failed response or for a connection error / timeout
    # (the exception): see the module's documentation.
    def api_failure(response, message: nil)
      if response.is_a?(Exception)
        kind = if response.is_a?(ApiTimeoutError) || TIMEOUT_ERRORS.any? { |c| response.is_a?(c) }
                 "http_timeout"
               else
                 "http_connection_error"
               end
        text = message || response.message
        text = response.class.name if text.nil? || text.empty?
        return Tasker.failure(message: text, error_type: kind, retryable: true)
      end
      status = response.status
      detail = message || (response.reason.empty? ? nil : response.reason) || response.text[0, 200]
      detail = "request failed" if detail.nil? || detail.empty?
      retryable = response.retryable?
      Tasker.failure(
        message: "HTTP #{status}: #{detail}",
        error_type: "http_#{status}",
        retryable: retryable,
        retry_after: retryable ? response.retry_after : nil,
        metadata: { "http_status" => status, "url" => response.url }
      )
    end

    # #api_success when the response is 2xx, else #api_failure.
    def api_result(response)
      response.ok? ? api_success(response) : api_failure(response)
    end

    private

    def api_uri(path, params)
      path = path.to_s
      base = api_class_setting(:base_url, "")
      url = if path.match?(%r{\Ahttps?://}) || base.empty?
              path
            else
              "#{base.chomp('/')}/#{path.delete_prefix('/')}"
            end
      uri = URI.parse(url)
      if params && !params.empty?
        query = URI.encode_www_form(params)
        uri.query = uri.query ? "#{uri.query}&#{query}" : query
      end
      uri
    end

    def api_class_setting(name, default)
      self.class.respond_to?(name) ? self.class.public_send(name) : default
    end
  end

  # For `type: decision` steps: choose which branches (the steps that depend on
  # this one) the engine creates; it creates them, and the deferred convergence
  # steps waiting for them, when the result is written.
  module Decision
    # Create these branches (names of steps the template declares).
    def create_steps(*names)
      flat = names.flatten.map(&:to_s)
      Tasker.success(result: { "decision_point_outcome" => { "type" => "create_steps", "step_names" => flat } })
    end

    # Create none of them.
    def no_branches
      Tasker.success(result: { "decision_point_outcome" => { "type" => "no_branches" } })
    end
  end

  # For `type: batchable` steps: split the work into cursor ranges; the engine
  # creates one batch worker per range (`<worker step>_<batch_id>`) and the
  # convergence step after them. Batch workers read their range with
  # context.cursor_range and save progress with context.save_checkpoint(cursor,
  # data); a retried or resumed attempt starts at the last checkpoint's cursor.
  module Batchable
    # Batches of `batch_size` over `total_items` (0-based, end-exclusive
    # cursors; ids "001", "002", ...), as the Rust core's Batchable trait.
    # Without `batch_size`, the engine cuts them by the template's
    # batch_config.batch_size.
    def create_batches(total_items, batch_size = nil)
      total = Integer(total_items)
      raise ArgumentError, "total_items must be >= 0" if total.negative?

      outcome = { "type" => "create_batches", "total_items" => total }
      unless batch_size.nil?
        size = [Integer(batch_size), 1].max
        count = (total + size - 1) / size
        outcome["cursor_configs"] = Array.new(count) do |i|
          { "batch_id" => format("%03d", i + 1), "start_cursor" => i * size,
            "end_cursor" => [(i + 1) * size, total].min }
        end
      end
      Tasker.success(result: { "batch_processing_outcome" => outcome })
    end

    # Nothing to process: the convergence step runs at once.
    def no_batches
      Tasker.success(result: { "batch_processing_outcome" => { "type" => "no_batches" } })
    end
  end
end
