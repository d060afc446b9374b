"""The shared HTTP layers, plain ASGI, that every request passes through in this order:

1. :class:`ObservedLayer` counts and times it, by route template, method and status,
   and turns any error raised below into its JSON response
   (``service.http.errors.error_response``, the one mapping);
2. :class:`BodyLimitLayer` refuses a body over the upload limit: a declared
   ``Content-Length`` before any byte is read, a chunked body at the first chunk past it.

Below them, the model routes (``service.http.router``) answer the prediction requests,
and FastAPI everything else. No framework is imported here.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time

from service.http.asgi import (
    ASGIApp,
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    declared_length_error,
    known_headers,
    send_json,
    too_large,
)
from service.http.errors import error_response
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
        except ClientGone:
            log_event(logger, "client_disconnected", logging.DEBUG, path=scope["path"])
        except Exception as exc:
            reply = error_response(exc, scope["path"], request_id.decode())  # logged there
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


class BodyLimitLayer:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = known_headers(scope)
        if b"content-length" in found:
            refused = declared_length_error(scope, self.max_bytes)
            if refused is not None:
                refused.headers["Connection"] = "close"  # the body is left unread
                raise refused
        elif scope["method"] in BODILESS_METHODS and b"transfer-encoding" not in found:
            await self.app(scope, receive, send)  # no body: nothing to count
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    error = too_large(limit)
                    error.headers["Connection"] = "close"
                    raise error
            return message

        return limited_receive


def build_pipeline(
    app: ASGIApp, metrics: ServiceMetrics, *, max_body_bytes: int, access_log: bool
) -> ASGIApp:
    """The shared layers around ``app`` (the model router, itself in front of FastAPI)."""
    return ObservedLayer(BodyLimitLayer(app, max_body_bytes), metrics, access_log=access_log)
