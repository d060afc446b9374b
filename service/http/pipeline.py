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

import logging
import time

from service.http.asgi import (
    ASGIApp,
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    declared_length_error,
    send_json,
    too_large,
)
from service.http.errors import error_response
from service.logs import log_event
from service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
ROUTE_KEY = "digitpass.route"  # set by the model router: the route template of a request
CLIENT_CLOSED = 499  # nginx's "client closed request"; recorded in metrics only


class ObservedLayer:
    """Times and counts every request, and answers any error raised below it.

    One layer, because both need the same fact, the status sent (or that nothing was
    sent yet), and a wrapper around ``send`` costs every request.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_CLOSED

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except ClientGone:
            log_event(logger, "client_disconnected", logging.DEBUG, path=scope["path"])
        except Exception as exc:
            reply = error_response(exc, scope["path"])  # logged there
            if status == CLIENT_CLOSED:  # nothing sent yet: the error is the answer
                await send_json(send, reply.status, reply.body, reply.headers)
                status = reply.status
        finally:
            template = scope.get(ROUTE_KEY)
            if template is None:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - started
            )


class BodyLimitLayer:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = declared_length_error(scope, self.max_bytes)
        if refused is not None:
            refused.headers["Connection"] = "close"  # the body is left unread
            raise refused
        if scope["method"] in BODILESS_METHODS and not has_body(scope):
            await self.app(scope, receive, send)  # nothing to count
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


def has_body(scope: Scope) -> bool:
    """Whether the request declares a body (a length, or chunked transfer)."""
    return any(key in (b"content-length", b"transfer-encoding") for key, _ in scope["headers"])


def build_pipeline(app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int) -> ASGIApp:
    """The shared layers around ``app`` (the model router, itself in front of FastAPI)."""
    return ObservedLayer(BodyLimitLayer(app, max_body_bytes), metrics)
