"""Capabilities a handler class mixes in: :class:`Api` (HTTP on the standard
library), :class:`Decision` and :class:`Batchable` (the result shapes of decision
and batchable steps, identical to the Rust core's traits)."""

from __future__ import annotations

import email.utils
import json as _json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from .errors import RetryableError
from .result import StepResult, failure, success

__all__ = [
    "Api",
    "ApiResponse",
    "ApiConnectionError",
    "ApiTimeoutError",
    "Decision",
    "Batchable",
    "parse_retry_after",
]


class ApiConnectionError(RetryableError):
    """The request never got a response (refused, reset, DNS ...). Retryable."""


class ApiTimeoutError(RetryableError):
    """The request timed out. Retryable."""


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date (seconds from
    ``now``, never negative). None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class _Headers(Mapping[str, str]):
    """Response headers, case-insensitive."""

    def __init__(self, pairs: Iterable[Tuple[str, str]]) -> None:
        self._items: Dict[str, Tuple[str, str]] = {}
        for k, v in pairs:
            low = k.lower()
            if low in self._items:
                self._items[low] = (self._items[low][0], self._items[low][1] + ", " + v)
            else:
                self._items[low] = (k, v)

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __repr__(self) -> str:
        return repr(dict(self._items.values()))


class ApiResponse:
    """An HTTP response: ``status``, ``headers`` (case-insensitive), ``body`` (bytes),
    ``text``, ``json()``."""

    def __init__(self, status: int, headers: Iterable[Tuple[str, str]], body: bytes, url: str, reason: str = ""):
        self.status = int(status)
        self.headers = _Headers(headers)
        self.body = body
        self.url = url
        self.reason = reason

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        charset = "utf-8"
        ctype = self.headers.get("Content-Type", "")
        for part in ctype.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset" and v:
                charset = v.strip('"')
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        return _json.loads(self.text) if self.body else None

    @property
    def retry_after(self) -> Optional[float]:
        """The ``Retry-After`` header in seconds, or None."""
        return parse_retry_after(self.headers.get("Retry-After"))

    @property
    def is_retryable(self) -> bool:
        """408, 429 and 5xx are worth retrying; other 4xx are not."""
        return self.status in (408, 429) or self.status >= 500

    def __repr__(self) -> str:
        return f"ApiResponse({self.status} {self.url})"


class Api:
    """HTTP helpers for a handler (``urllib`` only, no third-party dependency).

    Class attributes: ``base_url`` (prefixed to relative paths), ``default_headers``,
    ``timeout`` (seconds). ``get/post/put/patch/delete`` return an
    :class:`ApiResponse` whatever the status; a connection error raises
    :class:`ApiConnectionError`, a timeout :class:`ApiTimeoutError` (both retryable).
    ``api_failure(response)`` turns a failed response into the right failure.
    """

    base_url: str = ""
    default_headers: Mapping[str, str] = {}
    timeout: float = 30.0

    def _url(self, path: str, params: Optional[Mapping[str, Any]]) -> str:
        if path.startswith(("http://", "https://")) or not self.base_url:
            url = path
        else:
            url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        data: Union[bytes, str, Mapping[str, Any], None] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> ApiResponse:
        url = self._url(path, params)
        hdrs: Dict[str, str] = {"Accept": "application/json"}
        hdrs.update(self.default_headers)
        body: Optional[bytes] = None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(data, Mapping):
            body = urllib.parse.urlencode(data, doseq=True).encode("ascii")
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(data, str):
            body = data.encode("utf-8")
        elif data is not None:
            body = bytes(data)
        if headers:
            hdrs.update(headers)
        req = urllib.request.Request(url, data=body, headers=hdrs, method=method.upper())
        limit = self.timeout if timeout is None else timeout
        try:
            with urllib.request.urlopen(req, timeout=limit) as resp:  # noqa: S310 - caller's URL
                return ApiResponse(resp.status, resp.getheaders(), resp.read(), url, resp.reason or "")
        except urllib.error.HTTPError as e:
            try:
                payload = e.read()
            except Exception:  # noqa: BLE001 - a broken error body is still a response
                payload = b""
            pairs = list(e.headers.items()) if e.headers is not None else []
            return ApiResponse(e.code, pairs, payload, url, str(e.reason or ""))
        except (socket.timeout, TimeoutError) as e:
            raise ApiTimeoutError(f"{method.upper()} {url} timed out after {limit}s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise ApiTimeoutError(f"{method.upper()} {url} timed out after {limit}s") from e
            raise ApiConnectionError(f"{method.upper()} {url} failed: {e.reason}") from e
        except (ConnectionError, OSError) as e:
            raise ApiConnectionError(f"{method.upper()} {url} failed: {e}") from e

    def get(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("DELETE", path, **kw)

    def api_success(self, response: ApiResponse, result: Any = None) -> StepResult:
        """A success carrying ``result``, or the response's JSON body when not given."""
        return success(response.json() if result is None else result, {"http_status": response.status})

    def api_failure(self, response: Union[ApiResponse, BaseException], message: Optional[str] = None) -> StepResult:
        """The failure for a failed response (as the Rust core's ``Api`` trait):
        error_type ``http_<status>``; 408, 429 and 5xx retryable, other 4xx permanent;
        a Retry-After header (seconds or HTTP date) becomes ``retry_after``.
        A connection error or timeout (the exception) is retryable."""
        if isinstance(response, BaseException):
            kind = (
                "http_timeout"
                if isinstance(response, (ApiTimeoutError, socket.timeout, TimeoutError))
                else ("http_connection_error")
            )
            return failure(message or str(response) or type(response).__name__, kind, retryable=True)
        status = response.status
        detail = message or response.reason or response.text[:200] or "request failed"
        retryable = response.is_retryable
        return failure(
            f"HTTP {status}: {detail}",
            f"http_{status}",
            retryable=retryable,
            retry_after=response.retry_after if retryable else None,
            metadata={"http_status": status, "url": response.url},
        )


class Decision:
    """For ``type: decision`` steps: choose which branches (the steps that depend on
    this one) the engine creates; it creates them, and the deferred convergence
    steps waiting for them, when the result is written."""

    def create_steps(self, *names: Union[str, Iterable[str]]) -> StepResult:
        """Create these branches (names of steps the template declares)."""
        flat: List[str] = []
        for n in names:
            if isinstance(n, str):
                flat.append(n)
            else:
                flat.extend(str(x) for x in n)
        return success({"decision_point_outcome": {"type": "create_steps", "step_names": flat}})

    def no_branches(self) -> StepResult:
        """Create none of them."""
        return success({"decision_point_outcome": {"type": "no_branches"}})


class Batchable:
    """For ``type: batchable`` steps: split the work into cursor ranges; the engine
    creates one batch worker per range (``<worker step>_<batch_id>``) and the
    convergence step after them. Batch workers read their range with
    ``context.cursor_range()`` and save progress with
    ``context.save_checkpoint(cursor, data)``; a retried or resumed attempt starts
    at the last checkpoint's cursor."""

    def create_batches(self, total_items: int, batch_size: Optional[int] = None) -> StepResult:
        """Batches of ``batch_size`` over ``total_items`` (0-based, end-exclusive
        cursors; ids ``"001"``, ``"002"``, ...). Without ``batch_size``, the engine
        cuts them by the template's ``batch_config.batch_size``."""
        total = int(total_items)
        if total < 0:
            raise ValueError("total_items must be >= 0")
        if batch_size is None:
            return success({"batch_processing_outcome": {"type": "create_batches", "total_items": total}})
        size = max(int(batch_size), 1)
        count = -(-total // size)
        configs = [
            {"batch_id": f"{i + 1:03}", "start_cursor": i * size, "end_cursor": min((i + 1) * size, total)}
            for i in range(count)
        ]
        return success(
            {"batch_processing_outcome": {"type": "create_batches", "total_items": total, "cursor_configs": configs}}
        )

    def no_batches(self) -> StepResult:
        """Nothing to process: the convergence step runs at once."""
        return success({"batch_processing_outcome": {"type": "no_batches"}})
