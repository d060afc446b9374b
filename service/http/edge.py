"""The HTTP edge: uvicorn's httptools protocol with the limits a hostile client meets first.

The ASGI app only sees a request once its headers have been parsed, so these limits
live in the server's protocol, per connection:

* **header cap**: the request line and headers together may take ``max_header_bytes``;
  past that the connection gets ``431`` and is closed, having cost no more than reading
  up to the cap (plus at most one socket read);
* **header timeout**: the headers must arrive within ``header_timeout_s`` of the
  connection opening (or of the request's first byte on a kept-alive connection);
  a half-open or trickling client is dropped (``408``, or a plain close when it sent
  nothing);
* **slow bodies**: once the headers are in, the body must keep up at least
  ``min_body_rate`` bytes a second, measured over windows of ``BODY_RATE_WINDOW_S``,
  and arrive in full within ``body_timeout_s``; a window in which the service
  itself was not reading (flow control) does not count against the client;
* **connection cap**: at most ``max_connections`` open connections per worker
  process; one more is answered ``503`` and closed at once.

Every refusal is counted by :mod:`service.http.refusals` (one summary line a second),
never logged per connection. The limits come from the app (``DigitpassAPI.edge_limits``,
built from the settings); uvicorn builds one protocol per connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.http.refusals import REFUSALS

KiB = 1024
BODY_RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class EdgeLimits:
    """The per-connection limits (see the module docstring); per worker process."""

    max_header_bytes: int = 16 * KiB
    header_timeout_s: float = 10.0
    min_body_rate: int = 1024
    body_timeout_s: float = 60.0
    max_connections: int = 4096


def limits_of(app: Any) -> EdgeLimits:
    """The limits the app carries, looking through wrappers uvicorn may add."""
    for _ in range(4):
        limits = getattr(app, "edge_limits", None)
        if isinstance(limits, EdgeLimits):
            return limits
        app = getattr(app, "app", None)
        if app is None:
            break
    return EdgeLimits()


def raw_response(status: int, reason: str, detail: str) -> bytes:
    """A complete ``Connection: close`` JSON error response, written before any ASGI."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HeadersRefused(Exception):
    """Raised in a parser callback to stop parsing a refused request."""


class EdgeProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus the header cap, the timeouts and the connection cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits_of(self.app)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_window_bytes = 0
        self._in_body = False
        self._refused = False

    # Connection life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if over:
            REFUSALS.count("connection_cap")
            self._refuse(503, "Service Unavailable", "too many open connections; retry later")
            return
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the header cap, and refusals counted rather than logged."""
        if self._refused:
            return
        if self._awaiting_headers:
            self._header_bytes += len(data)
        elif self._in_body:
            self._body_window_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            return
        except httptools.HttpParserError:
            if not self._refused:  # else a callback refused the request already
                REFUSALS.count("malformed_http")
                self._refuse(400, "Bad Request", "invalid HTTP request")
            return
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large()  # incomplete headers, past the cap already

    def _headers_too_large(self) -> None:
        REFUSALS.count("header_too_large")
        self._refuse(
            431,
            "Request Header Fields Too Large",
            f"request headers are larger than the {self.limits.max_header_bytes}-byte limit",
        )

    def _unsupported_upgrade_warning(self) -> None:
        REFUSALS.count("unsupported_upgrade")  # uvicorn logs one warning per request

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._start_header_timer()  # a kept-alive connection's next request

    def on_headers_complete(self) -> None:
        # Headers that arrived in one read: their size as parsed (request line, names,
        # values and each line's ": " and CRLF).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._headers_too_large()
            raise HeadersRefused  # stops the parser; data_received returns
        self._awaiting_headers = False
        self._header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        self._in_body = True
        self._body_started = self.loop.time()
        self._body_window_bytes = 0
        self._body_timer = self.loop.call_later(self._window_s(), self._check_body_rate)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._end_body()
        self._awaiting_headers = True
        self._header_bytes = 0

    # Timers
    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_s, self._headers_too_slow
        )

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its successor's clock starts later
        REFUSALS.count("header_timeout")
        if self._header_bytes:
            self._refuse(408, "Request Timeout", "request headers did not arrive in time")
        else:
            self.transport.close()

    def _check_body_rate(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        received, self._body_window_bytes = self._body_window_bytes, 0
        slow = not self.flow.read_paused and received < self.limits.min_body_rate * self._window_s()
        late = self.loop.time() - self._body_started >= self.limits.body_timeout_s
        if slow or late:
            REFUSALS.count("slow_body")
            self._drop_slow_body()
            return
        self._body_timer = self.loop.call_later(self._window_s(), self._check_body_rate)

    def _window_s(self) -> float:
        return min(BODY_RATE_WINDOW_S, self.limits.body_timeout_s)

    def _drop_slow_body(self) -> None:
        self._end_body()
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(
                raw_response(408, "Request Timeout", "request body arrived too slowly")
            )
        self.transport.close()  # the app, if still reading, sees a disconnect

    def _end_body(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._end_body()
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._refused = True
        self._cancel_timers()
        self._awaiting_headers = False
        if not self.transport.is_closing():
            self.transport.write(raw_response(status, reason, detail))
            self.transport.close()
