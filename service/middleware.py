"""Pure ASGI middleware: request metrics, and the upload-size limit.

Written against the raw ASGI interface (no framework imports) so that they add
as little as possible to every request.
"""

from __future__ import annotations

import time

from service.api.replies import error_reply
from service.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    declared_length_error,
    send_json,
    too_large,
)
from service.metrics import ServiceMetrics


class BodyLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413 before reading them whole.

    A declared ``Content-Length`` over the limit is refused before any body byte is
    read. A chunked body is counted as it arrives, and reading stops with
    :class:`PayloadTooLarge` (413) at the first chunk past the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = declared_length_error(scope, self.max_bytes)
        if error is not None:
            await send_json(send, error.status_code, error_reply(error.detail), close=True)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        return limited_receive


class MetricsMiddleware:
    """Counts requests and times them by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope.get("method", ""), status, time.perf_counter() - started
            )
