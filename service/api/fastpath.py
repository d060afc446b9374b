"""The two hot routes, answered in plain ASGI before FastAPI routes the request.

``GET /predict/pass`` and ``POST /predict/digit`` carry nearly all the traffic.
Through FastAPI, each request passes about a dozen layers (Starlette's and
FastAPI's middleware, route matching, the request wrapper, parameter validation)
that cost more CPU than the rest of a ``/predict/pass`` request, and all of it runs
under the GIL that the inference thread needs too (``docs/benchmarks.md``). Here a
request takes one dictionary lookup to reach its handler.

The fast path only answers what it fully understands, and declines everything else
before reading a byte, so that FastAPI answers it as before:

* ``/predict/pass`` with the query ``hours=<decimal>`` and nothing else, 0 to
  ``MAX_HOURS``. Any other query (missing, repeated, signed, exponent, percent
  escapes, extra parameters) goes to FastAPI, whose validation writes the 422.
* ``/predict/digit``, every POST: reading the body (``service.asgi.read_body``),
  the upload (``service.api.uploads``), the reply and every error
  (``service.api.replies``) are the same functions the FastAPI route uses.

The OpenAPI document still comes from the FastAPI routes, and
``DIGITPASS_FAST_PATH=false`` turns this off. Tests send the same requests both
ways and require the same status, body and headers (``tests/test_fastpath.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from service.api import replies
from service.api.schemas import MAX_HOURS
from service.api.uploads import image_from_body
from service.asgi import (
    ClientGone,
    Receive,
    Scope,
    Send,
    declared_length_error,
    header,
    read_body,
    send_json,
)
from service.errors import ServiceError
from service.metrics import ServiceMetrics
from service.runtime import ServingRuntime

PASS_ROUTE = "/predict/pass"
DIGIT_ROUTE = "/predict/digit"
CLIENT_CLOSED = 499  # nginx's "client closed request"; recorded in metrics only

_HOURS_QUERY = re.compile(rb"hours=([0-9]{1,5}(?:\.[0-9]{1,20})?)")


class FastPredictRoutes:
    """Answers the hot prediction requests; ``handle`` returns False for the rest."""

    def __init__(
        self, runtime: ServingRuntime, metrics: ServiceMetrics, max_body_bytes: int
    ) -> None:
        self._runtime = runtime
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request and return True, or return False having read nothing."""
        if scope["type"] != "http" or scope.get("root_path"):
            return False
        path = scope["path"]
        if path == PASS_ROUTE and scope["method"] == "GET":
            hours = simple_hours(scope["query_string"])
            if hours is None:
                return False
            await self._answer(PASS_ROUTE, scope, send, lambda: self._pass(hours))
            return True
        if path == DIGIT_ROUTE and scope["method"] == "POST":
            await self._answer(DIGIT_ROUTE, scope, send, lambda: self._digit(scope, receive))
            return True
        return False

    async def _pass(self, hours: float) -> bytes:
        prediction = await self._runtime.predict("pass", [hours])
        return replies.pass_reply(hours, prediction)

    async def _digit(self, scope: Scope, receive: Receive) -> bytes:
        refused = declared_length_error(scope, self._max_body_bytes)
        if refused is not None:
            # As BodyLimitMiddleware does: refuse unread, and close the connection.
            refused.headers["Connection"] = "close"
            raise refused
        body = await read_body(receive, self._max_body_bytes)
        image = image_from_body(header(scope, b"content-type") or "", body)
        prediction = await self._runtime.predict("digit", [image])
        return replies.digit_reply(prediction)

    async def _answer(
        self, route: str, scope: Scope, send: Send, work: Callable[[], Awaitable[bytes]]
    ) -> None:
        """Run ``work`` and send its reply, or the error it raised; record the request."""
        started = time.perf_counter()
        status = 200
        try:
            try:
                reply = await work()
            except ClientGone:
                status = CLIENT_CLOSED  # nobody is left to answer
                return
            except ServiceError as exc:
                status = exc.status_code
                replies.note_service_error(scope["path"], exc)
                await send_json(send, status, replies.error_reply(exc.detail), exc.headers)
                return
            except Exception as exc:
                status = 500
                replies.note_unexpected_error(scope["path"], exc)
                await send_json(send, status, replies.error_reply("internal server error"))
                return
            await send_json(send, status, reply)
        finally:
            self._metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - started
            )


def simple_hours(query: bytes) -> float | None:
    """``b"hours=4.5"`` -> 4.5; ``None`` for any query that is not exactly that form."""
    match = _HOURS_QUERY.fullmatch(query)
    if match is None:
        return None
    hours = float(match[1])
    return hours if hours <= MAX_HOURS else None
