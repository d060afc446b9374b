"""Raw ASGI helpers: request headers, a size-limited body reader, JSON responses.

Framework-free, for the shared layers (``service.http.pipeline``) and the model router
(``service.http.router``), which both run before FastAPI sees a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from service.errors import MalformedRequest, PayloadTooLarge, ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS = ((b"content-type", b"application/json"),)


class ClientGone(Exception):
    """The client disconnected before its request body arrived in full."""


# The request headers the service itself reads, found in one pass over the headers.
KNOWN_HEADERS = frozenset(
    {b"content-length", b"content-type", b"transfer-encoding", b"x-request-id"}
)
HEADERS_KEY = "digitpass.headers"


def known_headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each of ``KNOWN_HEADERS`` the request has (one pass, cached)."""
    found = scope.get(HEADERS_KEY)
    if found is None:
        found = {}
        for key, value in scope.get("headers", ()):
            if key in KNOWN_HEADERS and key not in found:
                found[key] = value
        scope[HEADERS_KEY] = found
    return found


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), stripped; ``None`` if absent."""
    if name in KNOWN_HEADERS:
        value = known_headers(scope).get(name)
        return None if value is None else value.decode("latin-1").strip()
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1").strip()
    return None


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than the {max_bytes}-byte limit")


def declared_length_error(scope: Scope, max_bytes: int) -> ServiceError | None:
    """The error for a ``Content-Length`` that is not a number or is over the limit.

    Checked before any body byte is read, so an oversized upload costs nothing.
    """
    declared = known_headers(scope).get(b"content-length")
    if declared is None:
        return None
    declared = declared.strip()
    if not declared.isdigit():
        return MalformedRequest("invalid Content-Length header")
    if length_value(declared) > max_bytes:
        return too_large(max_bytes)
    return None


def length_value(digits: bytes) -> int:
    """A ``Content-Length`` of ASCII digits as a number. Leading zeros are allowed (the
    parser lets ``0002`` through), and a value of more than 18 digits counts as larger
    than any limit, rather than meeting ``int()``'s 4300-digit limit (a ValueError)."""
    significant = digits.strip().lstrip(b"0") or b"0"
    return int(significant) if len(significant) <= 18 else 1 << 62


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body, at most ``max_bytes`` long.

    Raises :class:`PayloadTooLarge` at the first chunk past the limit (check
    ``declared_length_error`` first: a declared length can be refused unread), or
    :class:`ClientGone`.
    """
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    close: bool = False,
) -> None:
    """One complete JSON response. ``close`` ends the connection after it."""
    raw = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
