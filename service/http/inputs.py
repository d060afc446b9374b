"""The request as a model kind's route decodes it: ``service.models.kinds.RequestInput``.

The body has been read already (within the upload limit). Query strings are split with
``urllib.parse`` (linear, no regular expression), JSON is parsed by the standard
library's C decoder (``service.http.json_body``: large bodies off the event loop), and
uploads by ``service.http.uploads``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from service.errors import InvalidInput
from service.http.asgi import Scope, header
from service.http.json_body import decode
from service.http.uploads import file_from_body, files_from_body, media_type_of

MAX_QUERY_FIELDS = 32


def parse_query(raw: str) -> dict[str, str]:
    """``hours=4&x=1`` -> ``{"hours": "4", "x": "1"}``; the last of a repeated name wins.

    Without escapes (``%``, ``+``) a split is all it takes; otherwise ``parse_qsl``.
    """
    if "&" not in raw and "%" not in raw and "+" not in raw:  # hours=4: the usual query
        key, _, value = raw.partition("=")
        return {key: value} if raw else {}
    if raw.count("&") >= MAX_QUERY_FIELDS:
        raise InvalidInput(f"at most {MAX_QUERY_FIELDS} query parameters")
    if "%" not in raw and "+" not in raw:
        pairs = (part.partition("=") for part in raw.split("&") if part)
        return {key: value for key, _, value in pairs}
    return dict(parse_qsl(raw, keep_blank_values=True))


NOT_PARSED = object()


def check_json_type(content_type: str) -> None:
    media_type = media_type_of(content_type)
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise InvalidInput(
            f"body: send JSON with 'Content-Type: application/json' (got {media_type!r})"
        )


class HttpInput:
    """One request's query, headers and body."""

    __slots__ = ("_query", "_scope", "body", "parsed")

    def __init__(self, scope: Scope, body: bytes, parsed: Any = None) -> None:
        self._scope = scope
        self.body = body
        self.parsed = parsed if parsed is not None else NOT_PARSED
        self._query: dict[str, str] | None = None

    def wants_json(self) -> bool:
        """Whether the body is declared JSON (or undeclared: routes read it as JSON)."""
        media_type = media_type_of(self.content_type())
        return not media_type or media_type == "application/json" or media_type.endswith("+json")

    def query_value(self, name: str) -> str | None:
        if self._query is None:
            self._query = parse_query(self._scope.get("query_string", b"").decode("latin-1"))
        return self._query.get(name)

    def content_type(self) -> str:
        return header(self._scope, b"content-type") or ""

    def json_body(self) -> Any:
        check_json_type(self.content_type())
        if self.parsed is not NOT_PARSED:
            return self.parsed  # parsed off the event loop already (a large body)
        return decode(self.body)

    def upload(self, field_name: str) -> bytes:
        return file_from_body(self.content_type(), self.body, field_name)

    def uploads(self, field_name: str, limit: int) -> list[bytes]:
        return files_from_body(self.content_type(), self.body, field_name, limit)
