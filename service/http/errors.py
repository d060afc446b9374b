"""The one function that turns an error into its HTTP response, and what gets logged.

Every layer and every route, the plain-ASGI ones and FastAPI's handlers alike, answers
an error through :func:`error_response`: ``{"detail": "..."}`` with the error's status
and headers. A client's mistakes (4xx) are not logged; the service's own failures are.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from service.errors import ServiceError
from service.http.refusals import REFUSALS
from service.logs import log_event

logger = logging.getLogger("service.requests")

INTERNAL_ERROR = "internal server error"


@dataclass(frozen=True)
class ErrorReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _encode(document: dict[str, str]) -> bytes:
    """Compact JSON in UTF-8, as Starlette's JSONResponse writes it. A detail may quote
    the client's own text, lone surrogates included (JSON's ``"\\ud800"``): those become
    "?" rather than an error while answering an error."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace")


def error_body(detail: str) -> bytes:
    """Every error's body: ``{"detail": "..."}``."""
    return _encode({"detail": detail})


def protocol_path(path: str) -> bool:
    """The Open Inference Protocol's routes (``/v2``): errors read ``{"error": ...}``, and
    a client's mistake is a 400 there (the friendly routes say 422 for some)."""
    return path == "/v2" or path.startswith("/v2/")


def protocol_error(status: int, detail: str) -> tuple[int, bytes]:
    return (400 if status == 422 else status), _encode({"error": detail})


def error_response(exc: Exception, path: str, request_id: str | None = None) -> ErrorReply:
    """The response for ``exc`` raised while answering ``path``."""
    reply = _error_response(exc, path, request_id)
    if protocol_path(path):
        status, body = protocol_error(reply.status, json.loads(reply.body)["detail"])
        return ErrorReply(status, body, reply.headers)
    return reply


def _error_response(exc: Exception, path: str, request_id: str | None) -> ErrorReply:
    if isinstance(exc, ServiceError):
        if exc.refusal is not None:
            REFUSALS.count(exc.refusal)
        elif exc.status_code >= 500:
            log_event(
                logger,
                "request_failed",
                logging.WARNING,
                path=path,
                status=exc.status_code,
                detail=exc.detail,
                request_id=request_id,
            )
        return ErrorReply(exc.status_code, error_body(exc.detail), exc.headers)
    log_event(
        logger, "unhandled_error", logging.ERROR, path=path, error=repr(exc), request_id=request_id
    )
    return ErrorReply(500, error_body(INTERNAL_ERROR))
