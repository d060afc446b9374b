"""The shared HTTP layers, plain ASGI, that every request passes through in this order:

1. :class:`ObservedLayer` counts and times it, by route template, method and status,
   and turns any error raised below into its JSON response
   (``service.http.errors.error_response``, the one mapping);
2. :class:`WorkLimitLayer` caps the requests in progress in this worker process
   (``max_in_flight``): one more gets a JSON 503 at once, without queueing.
   ``/healthz``, ``/readyz`` and ``/metrics`` bypass it, so that health stays visible
   under overload;
3. :class:`BodyLimitLayer` refuses a body over the upload limit: a declared
   ``Content-Length`` before any byte is read, a chunked body at the first chunk past it;
   and it holds every body's bytes against the process's :class:`BodyBudget`
   (``max_buffered_bytes`` in all): past it, 503.

Below them, the model routes (``service.http.router``) answer the prediction requests,
and FastAPI everything else. No framework is imported here.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

from service.errors import Overloaded, forget_tracebacks
from service.http.asgi import (
    ASGIApp,
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    declared_length_error,
    known_headers,
    length_value,
    send_json,
    too_large,
)
from service.http.errors import error_response
from service.http.work import UNCAPPED_PATHS, WorkGauge
from service.logs import log_event
from service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("service.access")

BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
ROUTE_KEY = "digitpass.route"
REQUEST_ID_KEY = "digitpass.request_id"  # set by the model router: the route template of a request
CLIENT_CLOSED = 499  # nginx's "client closed request"; recorded in metrics only


class ObservedLayer:
    """Gives every request its ``X-Request-ID``, times and counts it, answers any error
    raised below it, and writes the access log line when that is switched on.

    One layer, because all of it needs the same facts (the status sent, or that nothing
    was sent yet), and every wrapper around ``send`` costs every request.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, *, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_CLOSED
        request_id = self._ids.of(scope)
        scope[REQUEST_ID_KEY] = request_id
        id_header = (b"x-request-id", request_id)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except ClientGone as exc:
            log_event(logger, "client_disconnected", logging.DEBUG, path=scope["path"])
            forget_tracebacks(exc)
        except Exception as exc:
            reply = error_response(exc, scope["path"], request_id.decode())  # logged there
            forget_tracebacks(exc)
            if status == CLIENT_CLOSED:  # nothing sent yet: the error is the answer
                await send_json(recording_send, reply.status, reply.body, reply.headers)
        finally:
            seconds = time.perf_counter() - started
            template = scope.get(ROUTE_KEY)
            if template is None:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(template, scope["method"], status, seconds)
            if self.access_log:
                log_access(scope, status, seconds, request_id)


class RequestIds:
    """The client's ``X-Request-ID`` when it is a sane one, else a new one: a random
    prefix for this process and a counter (unique, and cheaper than a UUID each)."""

    MAX_LENGTH = 128

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6).encode()
        self._counter = itertools.count(1)

    def of(self, scope: Scope) -> bytes:
        """The id as ASCII bytes, as the header carries it."""
        value = known_headers(scope).get(b"x-request-id")
        if (
            value is not None
            and 0 < len(value) <= self.MAX_LENGTH
            and value.isascii()
            and value.decode("ascii").isprintable()
        ):
            return value
        return b"%s-%x" % (self._prefix, next(self._counter))


def log_access(scope: Scope, status: int, seconds: float, request_id: bytes) -> None:
    client = scope.get("client")
    log_event(
        access_logger,
        "request",
        method=scope["method"],
        path=scope["path"],
        status=status,
        duration_ms=round(seconds * 1000, 3),
        request_id=request_id.decode("ascii"),
        client=client[0] if client else None,
    )


class WorkLimitLayer:
    """At most ``gauge.max_in_flight`` requests in progress in this process; past it,
    503 at once (the server's protocol refuses most of them before they get here)."""

    def __init__(self, app: ASGIApp, gauge: WorkGauge) -> None:
        self.app = app
        self.gauge = gauge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCAPPED_PATHS:
            await self.app(scope, receive, send)
            return
        gauge = self.gauge
        if gauge.full():
            raise Overloaded(gauge.detail(), refusal="work_cap")
        gauge.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gauge.in_flight -= 1


class BodyBudget:
    """The request body bytes this process holds in memory at once, capped in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

    def take(self, size: int) -> None:
        """Hold ``size`` more bytes, or raise :class:`Overloaded` (nothing is held then)."""
        if self.held + size > self.max_bytes:
            raise Overloaded(
                "the server holds too many request bodies right now; retry later",
                refusal="body_budget",
                close=True,
            )
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyLimitLayer:
    def __init__(self, app: ASGIApp, max_bytes: int, budget: BodyBudget) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = known_headers(scope)
        declared = found.get(b"content-length")
        if declared is not None:
            refused = declared_length_error(scope, self.max_bytes)
            if refused is not None:
                refused.headers["Connection"] = "close"  # the body is left unread
                raise refused
            size = length_value(declared)
            if size == 0:
                await self.app(scope, receive, send)
                return
            self.budget.take(size)  # the whole declared body, before a byte is read
            try:
                await self.app(scope, receive, send)
            finally:
                self.budget.give_back(size)
            return
        if scope["method"] in BODILESS_METHODS and b"transfer-encoding" not in found:
            await self.app(scope, receive, send)  # no body: nothing to count
            return
        held = [0]
        try:
            await self.app(scope, self._limited(receive, held), send)
        finally:
            self.budget.give_back(held[0])

    def _limited(self, receive: Receive, held: list[int]) -> Receive:
        """A chunked body: counted against the limit and the budget as it arrives."""
        limit = self.max_bytes
        budget = self.budget

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                if held[0] + size > limit:
                    error = too_large(limit)
                    error.headers["Connection"] = "close"
                    raise error
                budget.take(size)
                held[0] += size
            return message

        return limited_receive


def build_pipeline(
    app: ASGIApp,
    metrics: ServiceMetrics,
    *,
    max_body_bytes: int,
    access_log: bool,
    work: WorkGauge | None = None,
    max_buffered_bytes: int | None = None,
) -> ASGIApp:
    """The shared layers around ``app`` (the model router, itself in front of FastAPI).

    The caps (``work``, ``max_buffered_bytes``) count in this process only.
    """
    budget = BodyBudget(max_buffered_bytes if max_buffered_bytes is not None else 1 << 62)
    limited = BodyLimitLayer(app, max_body_bytes, budget)
    gauge = work if work is not None else WorkGauge(1 << 62)
    return ObservedLayer(WorkLimitLayer(limited, gauge), metrics, access_log=access_log)
