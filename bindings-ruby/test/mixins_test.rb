# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/http_server"

# The Api, Decision and Batchable mixins.
class MixinsTest < Minitest::Test
  include TestSupport

  class Fetch < Tasker::StepHandler
    include Tasker::Api
    timeout 2
    default_headers "X-Client" => "tasker-test"
  end

  def fetcher(server)
    url = server.url("/api/")
    Class.new(Fetch) { base_url url }.new
  end

  def with_server(responder)
    server = TestHTTPServer.new(&responder)
    yield server
  ensure
    server&.close
  end

  ECHO = lambda do |req|
    echoed = req.slice(:method, :path, :query, :body).transform_keys(&:to_s).merge("ua" => req[:headers]["x-client"])
    [200, { "Content-Type" => "application/json" }, JSON.generate(echoed)]
  end

  def test_requests_and_success
    with_server(ECHO) do |server|
      f = fetcher(server)
      resp = f.get("items", params: { "q" => "a b", "n" => 2 })
      assert resp.ok?
      assert_equal 200, resp.status
      assert_equal "application/json", resp["Content-Type"]
      echoed = resp.json
      assert_equal "GET", echoed["method"]
      assert_equal "/api/items", echoed["path"]
      assert_equal "q=a+b&n=2", echoed["query"]
      assert_equal "tasker-test", echoed["ua"]
      resp = f.post("/items", json: { "x" => 1 })
      assert_equal({ "x" => 1 }, JSON.parse(resp.json["body"]))
      assert_equal "/api/items", resp.json["path"], "a leading slash stays under base_url"
      ok = f.api_success(resp)
      assert ok.success?
      assert_equal 200, ok.metadata["http_status"]
      assert_equal "POST", ok.result["method"]
      assert_equal({ "mine" => 1 }, f.api_success(resp, result: { "mine" => 1 }).result)
      assert_equal "DELETE", f.delete(server.url("/abs")).json["method"], "an absolute URL ignores base_url"
      assert_equal "a=1", f.put("x", form: { "a" => 1 }).json["body"]
    end
  end

  def test_failures_follow_the_status_rules
    responder = lambda do |req|
      status = Integer(req[:path][%r{/(\d+)\z}, 1])
      headers = [429, 503, 400].include?(status) ? { "Retry-After" => "2" } : {}
      [status, headers, "nope"]
    end
    with_server(responder) do |server|
      f = fetcher(server)
      expectations = { 400 => false, 401 => false, 403 => false, 404 => false, 409 => false, 422 => false,
                       408 => true, 429 => true, 500 => true, 502 => true, 503 => true, 504 => true }
      expectations.each do |status, retryable|
        resp = f.get("s/#{status}")
        refute resp.ok?
        r = f.api_failure(resp)
        refute r.success?
        assert_equal "http_#{status}", r.error.error_type
        assert_equal retryable, r.error.retryable, "status #{status}"
        assert_match(/\AHTTP #{status}: /, r.error.message)
        assert_equal status, r.metadata["http_status"]
        if [429, 503].include?(status)
          assert_equal 2000, r.error.retry_after_ms, "Retry-After honoured on #{status}"
        else
          assert_nil r.error.retry_after_ms, "status #{status}"
        end
      end
      assert_equal "http_404", f.api_result(f.get("s/404")).error.error_type
    end
  end

  def test_retry_after_as_an_http_date
    now = Time.now
    date = (now + 30).httpdate
    seconds = Tasker::Api.parse_retry_after(date, now: now)
    assert_in_delta 30, seconds, 1
    assert_equal 0.0, Tasker::Api.parse_retry_after((now - 30).httpdate, now: now), "never negative"
    assert_equal 120.0, Tasker::Api.parse_retry_after(" 120 ")
    assert_nil Tasker::Api.parse_retry_after("soon")
    assert_nil Tasker::Api.parse_retry_after(nil)
    with_server(->(_) { [503, { "Retry-After" => (Time.now + 5).httpdate }, ""] }) do |server|
      r = fetcher(server).api_failure(fetcher(server).get("x"))
      assert_operator r.error.retry_after_ms, :>, 3000
      assert_operator r.error.retry_after_ms, :<=, 6000
    end
  end

  def test_connection_errors_and_timeouts_are_retryable
    closed = TCPServer.new("127.0.0.1", 0)
    port = closed.addr[1]
    closed.close
    f = Class.new(Fetch) { base_url "http://127.0.0.1:#{port}" }.new
    e = assert_raises(Tasker::ApiConnectionError) { f.get("/x") }
    assert_kind_of Tasker::RetryableError, e
    r = f.api_failure(e)
    assert_equal "http_connection_error", r.error.error_type
    assert r.error.retryable
    row = Tasker.failure_from_exception(e)
    assert row.error.retryable, "raised from a handler, it is a retryable failure"
    assert_equal "ApiConnectionError", row.error.error_type

    with_server(->(_) { :hang }) do |server|
      t0 = monotonic
      e = assert_raises(Tasker::ApiTimeoutError) { fetcher(server).get("slow", timeout: 0.3) }
      assert_operator monotonic - t0, :<, 2
      assert_equal "http_timeout", fetcher(server).api_failure(e).error.error_type
    end
  end

  class FetchApi < Tasker::StepHandler
    include Tasker::Api

    def call(_context)
      resp = get("/rate")
      resp.ok? ? api_success(resp) : api_failure(resp)
    end
  end

  def test_a_429_with_retry_after_delays_the_next_attempt
    hits = []
    responder = lambda do |_req|
      hits << Tasker.now_ms
      hits.size == 1 ? [429, { "Retry-After" => "1" }, "slow down"] : [200, {}, '{"rate": 1.25}']
    end
    with_server(responder) do |server|
      handler = Class.new(FetchApi) { base_url server.url }
      with_db(:sqlite) do |url|
        Tasker::Engine.open(database_url: url, templates: [TEMPLATES_DIR], handlers: { "fetch_api" => handler }) do |e|
          task = e.run("rbtests", "api_retry_after", {}, timeout: 30)
          assert_equal "complete", task["state"], task.inspect
          s = step(task, "fetch")
          assert_equal 2, s["attempts"]
          assert_equal({ "rate" => 1.25 }, s["result"])
          assert_operator hits[1] - hits[0], :>=, 1000 - 5
          assert_operator s["completed_at"] - hits[0], :>=, 1000 - 5
        end
      end
    end
  end

  class Router < Tasker::StepHandler
    include Tasker::Decision
    include Tasker::Batchable
  end

  def test_decision_and_batch_outcomes_match_the_rust_core
    h = Router.new
    assert_equal({ "decision_point_outcome" => { "type" => "create_steps", "step_names" => %w[a b c] } },
                 h.create_steps("a", %w[b c]).result)
    assert_equal({ "decision_point_outcome" => { "type" => "no_branches" } }, h.no_branches.result)
    # core/src/worker/handler.rs: Batchable::create_batches(1000, 300).
    assert_equal(
      { "batch_processing_outcome" => {
        "type" => "create_batches", "total_items" => 1000,
        "cursor_configs" => [
          { "batch_id" => "001", "start_cursor" => 0, "end_cursor" => 300 },
          { "batch_id" => "002", "start_cursor" => 300, "end_cursor" => 600 },
          { "batch_id" => "003", "start_cursor" => 600, "end_cursor" => 900 },
          { "batch_id" => "004", "start_cursor" => 900, "end_cursor" => 1000 }
        ]
      } },
      h.create_batches(1000, 300).result
    )
    assert_equal [], h.create_batches(0, 10).result["batch_processing_outcome"]["cursor_configs"]
    assert_equal 3, h.create_batches(3, 0).result["batch_processing_outcome"]["cursor_configs"].size,
                 "a batch size below 1 counts as 1"
    assert_equal({ "batch_processing_outcome" => { "type" => "no_batches" } }, h.no_batches.result)
    assert_raises(ArgumentError) { h.create_batches(-1, 10) }
    assert_equal({ "batch_processing_outcome" => { "type" => "create_batches", "total_items" => 1000 } },
                 h.create_batches(1000).result, "without a size the template's batch_size cuts them")
    # The same bytes as the golden files the core accepts.
    golden = JSON.parse(File.read(File.join(GOLDEN_DIR, "step_result/valid/batch_create_batches.json")))
    outcome = golden["result"]["batch_processing_outcome"]
    first = outcome["cursor_configs"].first
    size = first["end_cursor"] - first["start_cursor"]
    assert_equal golden["result"], h.create_batches(outcome["total_items"], size).result
  end
end
