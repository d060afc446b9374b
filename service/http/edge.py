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
import random
from dataclasses import dataclass
from typing import Any, TypeVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.http.errors import protocol_path
from service.http.refusals import REFUSALS
from service.http.work import UNCAPPED_PATHS, OverloadedApp, WorkGauge

KiB = 1024
T = TypeVar("T")
BODY_RATE_WINDOW_S = 5.0
# After a work-cap refusal, a kept-alive connection is not read for 1 to 2 s (its
# Retry-After is 1): a client that ignores it and retries at once costs the event loop
# under one refusal a second, not one per round trip, so health checks are not kept
# waiting. The pause is drawn at random in that range: with a fixed one, connections
# refused together (an overload's first burst) were all read again together, every
# second, and /healthz's p99 under 2000 such connections was 71-95 ms (38-47 ms drawn).
REFUSED_PAUSE_S = (1.0, 2.0)


@dataclass(frozen=True)
class EdgeLimits:
    """The per-connection limits (see the module docstring); per worker process."""

    max_header_bytes: int = 16 * KiB
    header_timeout_s: float = 10.0
    min_body_rate: int = 1024
    body_timeout_s: float = 60.0
    max_connections: int = 4096


def _carried(app: Any, name: str, kind: type[T]) -> T | None:
    """``app.<name>`` if it is a ``kind``, looking through wrappers uvicorn may add
    (each keeps the app it wraps as ``.app``)."""
    for _ in range(4):
        value = getattr(app, name, None)
        if isinstance(value, kind):
            return value
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


def limits_of(app: Any) -> EdgeLimits:
    """The limits the app carries (``DigitpassAPI.edge_limits``), else the defaults."""
    return _carried(app, "edge_limits", EdgeLimits) or EdgeLimits()


def gauge_of(app: Any) -> WorkGauge | None:
    """The app's work cap (``DigitpassAPI.work``)."""
    return _carried(app, "work", WorkGauge)


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


HEALTHY_BODY = b'{"status":"ok"}'
HEALTHY_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    % len(HEALTHY_BODY)
)


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
        self.work = gauge_of(self.app)
        self._refuse_app = OverloadedApp(self.work) if self.work is not None else None
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_window_bytes = 0
        self._in_body = False
        self._refused = False
        self._skipping_body = False
        self._pipelined = False
        self._owed_refusal: bytes | None = None
        self._refusal_pause: asyncio.TimerHandle | None = None

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
        self._pipelined = False
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
                if self._reading_body():  # its app waits for a body that will not come
                    self._drop_body(400, "Bad Request", "invalid HTTP request")
                else:
                    self._refuse(400, "Bad Request", "invalid HTTP request")
            return
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large()  # incomplete headers, past the cap already
        elif self._in_body and self._body_timer is None and not self._refused:
            self._body_started = self.loop.time()
            self._body_timer = self.loop.call_later(self._window_s(), self._check_body_rate)

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
        # Counted only when this read was larger than the cap (else they fit), or when
        # it also held the end of an earlier (pipelined) request.
        if self._header_bytes > self.limits.max_header_bytes or self._pipelined:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.limits.max_header_bytes:
                self._headers_too_large()
                raise HeadersRefused  # stops the parser; data_received returns
        self._awaiting_headers = False
        self._header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        work = self.work
        if work is not None and work.in_flight >= work.max_in_flight:
            path = self.url.partition(b"?")[0]
            if path.decode("latin-1") not in UNCAPPED_PATHS:
                self._refuse_over_work_cap(protocol_path(path.decode("latin-1")))
                self._start_body_clock()
                return
            if path == b"/healthz" and self._answer_alive():
                self._start_body_clock()
                return
        super().on_headers_complete()
        self._start_body_clock()

    def _refuse_over_work_cap(self, protocol: bool) -> None:
        """503 for a request over the work cap, for less than the request cost to send.

        With no response in progress on this connection, the answer is written at once
        and the body (if any) is skipped as it arrives: no task, no pipeline. Behind a
        pipelined request still being answered, a tiny ASGI app answers it in turn.
        """
        if self.cycle is None or self.cycle.response_complete:
            keep_alive = self.parser.should_keep_alive()
            REFUSALS.count("work_cap")
            self._skipping_body = True
            self.transport.write(self._overloaded_reply(keep_alive, protocol))
            if not keep_alive:
                self._refused = True
                self.transport.close()
            elif self._refusal_pause is None:
                self.flow.pause_reading()
                pause = random.uniform(*REFUSED_PAUSE_S)  # a spread, not a secret
                self._refusal_pause = self.loop.call_later(pause, self._end_pause)
            return
        app, self.app = self.app, self._refuse_app
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _answer_alive(self) -> bool:
        """Under overload, ``GET /healthz`` is answered here, in this read: the event loop
        is busy, and each turn it waits for (a task, the pipeline) would add a turn's
        latency. It carries no request id and is not in the request metrics."""
        if self.parser.get_method() not in (b"GET", b"HEAD"):
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # behind a pipelined request: answered in turn
        head = HEALTHY_HEAD
        self._skipping_body = True
        keep_alive = self.parser.should_keep_alive()
        if not keep_alive:
            head = head.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n")
        body = b"" if self.parser.get_method() == b"HEAD" else HEALTHY_BODY
        self.transport.write(head + body)
        if not keep_alive:
            self._refused = True
            self.transport.close()
        return True

    def _overloaded_reply(self, keep_alive: bool, protocol: bool) -> bytes:
        """The 503, as JSON ``{"detail"}``, or ``{"error"}`` on the V2 routes."""
        assert self.work is not None
        body = json.dumps({"error" if protocol else "detail": self.work.detail()}).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nretry-after: 1\r\n"
            + ("" if keep_alive else "connection: close\r\n")
            + "\r\n"
        )
        return head.encode("ascii") + body

    def _start_body_clock(self) -> None:
        # The timer itself is armed at the end of this read (data_received), and only
        # if the body is still incomplete then: a request whose body came with its
        # headers (every GET) never costs one.
        self._in_body = True
        self._body_window_bytes = 0

    def on_body(self, body: bytes) -> None:
        if not self._refused and not self._skipping_body:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        if self._skipping_body:
            self._skipping_body = False  # a refused request's body, skipped
        else:
            super().on_message_complete()
        self._end_body()
        self._awaiting_headers = True
        self._header_bytes = 0
        self._pipelined = True  # a next request in this same read: its size is unknown

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
        self._drop_body(408, "Request Timeout", "request body arrived too slowly")

    def _reading_body(self) -> bool:
        """Whether the request being answered now is still reading its body (its
        headers came, its response has not started, none is queued behind it)."""
        cycle = self.cycle
        return (
            not self._awaiting_headers
            and cycle is not None
            and not cycle.response_started
            and not self.pipeline
        )

    def _drop_body(self, status: int, reason: str, detail: str) -> None:
        """Answer ``status`` (if no response has started) and close: the app, if still
        reading the body, sees a disconnect."""
        self._refused = True
        self._cancel_timers()
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(raw_response(status, reason, detail))
        self.transport.close()

    def _end_body(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _end_pause(self) -> None:
        self._refusal_pause = None
        if not self.transport.is_closing():
            self.flow.resume_reading()

    def _cancel_timers(self) -> None:
        self._end_body()
        if self._refusal_pause is not None:
            self._refusal_pause.cancel()
            self._refusal_pause = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Answer ``status`` and close; after the answers still owed on this connection
        (pipelined requests before this one), so that none is lost or reordered."""
        self._refused = True
        self._cancel_timers()
        self._awaiting_headers = False
        if self.transport.is_closing():
            return
        reply = raw_response(status, reason, detail)
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            self._owed_refusal = reply
            self.flow.pause_reading()
            return
        self.transport.write(reply)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._owed_refusal is not None and not self.pipeline:
            if not self.transport.is_closing():
                self.transport.write(self._owed_refusal)
                self.transport.close()
            self._owed_refusal = None
