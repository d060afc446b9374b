"""Domain errors raised by plain-Python service code.

Each carries the HTTP status it maps to, so that preprocessing, batching and the
model registry stay free of FastAPI while the app factory turns every one of them
into a JSON ``{"detail": ...}`` response with the right status.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``status_code`` and a human-readable ``detail``."""

    status_code: int = 500
    # Set for refusals under load: counted in a summary line a second
    # (service.http.refusals) rather than logged one by one.
    refusal: str | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class EmptyInput(ServiceError):
    """The request carried no bytes at all."""

    status_code = 400


class InvalidImage(ServiceError):
    """Not an image, or a truncated or corrupt one."""

    status_code = 400


class MalformedRequest(ServiceError):
    """A body that does not parse as what its Content-Type says."""

    status_code = 400


class UnsupportedMediaType(ServiceError):
    status_code = 415


class PayloadTooLarge(ServiceError):
    """Body over the upload limit, or an image over the pixel limit."""

    status_code = 413


class NoDigitFound(ServiceError):
    """A decodable image with no ink on it."""

    status_code = 422


class InvalidInput(ServiceError):
    status_code = 422


class NotFound(ServiceError):
    status_code = 404


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class QueueFull(ServiceError):
    """The batcher's bounded queue is full; the client should retry later."""

    status_code = 503
    refusal = "queue_full"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class ModelNotReady(ServiceError):
    status_code = 503

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class RequestTimedOut(ServiceError):
    """The request waited in the queue longer than the timeout and was not run."""

    status_code = 504
    refusal = "timed_out"


class Overloaded(ServiceError):
    """A work cap of this process is reached (requests in progress, buffered bytes)."""

    status_code = 503

    def __init__(self, detail: str, *, refusal: str, close: bool = False) -> None:
        headers = {"Retry-After": "1"}
        if close:
            headers["Connection"] = "close"  # the body is left unread
        super().__init__(detail, headers=headers)
        self.refusal = refusal


class InferenceFailed(ServiceError):
    """The backend raised while running this request's batch."""

    status_code = 500


def forget_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of ``exc`` and of the exceptions it chains, once it is answered.

    A traceback holds the frames the exception left, and they hold their locals: the
    request's body, and the future that holds the exception itself. That is a cycle,
    which only the garbage collector frees, and not before its next collection: on a
    quiet server, many seconds and up to the buffered-bytes cap (a request refused as not
    an image kept its 5 MiB body). Without the tracebacks, the frames and what they hold
    are freed at once.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        one = pending.pop()
        if one is None or id(one) in seen:
            continue
        seen.add(id(one))
        one.__traceback__ = None
        pending += [one.__cause__, one.__context__]
