"""The Api mixin against a local http.server, and its mapping of responses to
failures (as core's Rust Api trait). Also end to end: a 429 with Retry-After."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import tasker
from tasker.mixins import parse_retry_after

from conftest import TEMPLATES_DIR, step

HITS: List[Tuple[str, str, float]] = []


class _Server(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: Dict[str, str] = {}) -> None:  # noqa: B006
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        HITS.append((method, self.path, time.time()))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0]
        if path == "/ok":
            self._send(200, {"method": method, "body": body, "query": self.path.partition("?")[2]})
        elif path == "/missing":
            self._send(404, {"error": "not here"})
        elif path == "/down":
            self._send(503, {"error": "maintenance"})
        elif path == "/busy":
            self._send(429, {"error": "slow down"}, {"Retry-After": "2"})
        elif path == "/busy-date":
            when = email.utils.formatdate(time.time() + 30, usegmt=True)
            self._send(503, {"error": "later"}, {"Retry-After": when})
        elif path == "/bad":
            self._send(400, {"error": "bad"}, {"Retry-After": "5"})
        elif path == "/timeout":
            self._send(408, {})
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, {})
        elif path == "/throttle-once":
            n = sum(1 for h in HITS if h[1] == "/throttle-once")
            if n == 1:
                self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
            else:
                self._send(200, {"value": 42})
        else:
            self._send(500, {"error": "no route"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class Client(tasker.StepHandler, tasker.Api):
    timeout = 0.5


def _client(base: str) -> Client:
    c = Client()
    c.base_url = base
    return c


def test_verbs_and_response(server: str) -> None:
    c = _client(server)
    r = c.get("/ok", params={"a": 1})
    assert r.status == 200 and r.ok
    assert r.json() == {"method": "GET", "body": None, "query": "a=1"}
    assert r.headers["content-type"].startswith("application/json")
    assert "Content-Type" in r.headers
    assert json.loads(r.text)["method"] == "GET"
    for verb in ("post", "put", "patch", "delete"):
        r = getattr(c, verb)("/ok", json={"v": verb})
        assert r.json()["method"] == verb.upper() and r.json()["body"] == {"v": verb}
    ok = c.api_success(c.get("/ok"))
    assert ok.success and ok.result["method"] == "GET"


def test_status_mapping(server: str) -> None:
    c = _client(server)
    nf = c.api_failure(c.get("/missing"))
    assert nf.error is not None
    assert (nf.error.error_type, nf.error.retryable) == ("http_404", False)
    assert nf.error.message.startswith("HTTP 404")
    down = c.api_failure(c.get("/down")).error
    assert down is not None and (down.error_type, down.retryable, down.retry_after) == ("http_503", True, None)
    busy = c.api_failure(c.get("/busy")).error
    assert busy is not None and (busy.error_type, busy.retryable) == ("http_429", True)
    assert busy.retry_after == 2.0 and busy.retry_after_ms == 2000
    dated = c.api_failure(c.get("/busy-date")).error
    assert dated is not None and dated.retry_after is not None and 25 <= dated.retry_after <= 31
    bad = c.api_failure(c.get("/bad")).error
    assert bad is not None and bad.retryable is False and bad.retry_after_ms is None
    t408 = c.api_failure(c.get("/timeout")).error
    assert t408 is not None and t408.retryable is True


def test_connection_errors_and_timeouts_are_retryable(server: str) -> None:
    c = _client(server)
    with pytest.raises(tasker.ApiTimeoutError) as te:
        c.get("/slow")
    assert isinstance(te.value, tasker.RetryableError)
    f = c.api_failure(te.value).error
    assert f is not None and f.retryable and f.error_type == "http_timeout"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(tasker.ApiConnectionError) as ce:
        c.get(f"http://127.0.0.1:{port}/x")
    assert isinstance(ce.value, tasker.RetryableError)
    f = c.api_failure(ce.value).error
    assert f is not None and f.retryable and f.error_type == "http_connection_error"
    uncaught = tasker.result.failure_from_exception(ce.value).error
    assert uncaught is not None and uncaught.retryable and uncaught.error_type == "ApiConnectionError"


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now) == pytest.approx(10, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now) == 0.0


def test_api_step_honours_retry_after_end_to_end(server: str, sqlite_url: str) -> None:
    class FetchApi(tasker.StepHandler, tasker.Api):
        base_url = server

        def call(self, context: tasker.StepContext) -> tasker.StepResult:
            r = self.get("/throttle-once")
            return self.api_success(r) if r.ok else self.api_failure(r)

    with tasker.Engine(sqlite_url, templates=[TEMPLATES_DIR], handlers={"fetch_api": FetchApi}) as eng:
        task = eng.run("pytests", "api_retry_after", {}, timeout=30)
    assert task["state"] == "complete", task
    s = step(task, "fetch")
    assert s["attempts"] == 2 and s["result"] == {"value": 42}
    first, second = [h[2] for h in HITS if h[1] == "/throttle-once"][:2]
    assert second - first >= 1.0 - 0.005
