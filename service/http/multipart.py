"""A small, strict ``multipart/form-data`` reader for bodies already held in memory.

The upload limit bounds every body, so the service reads it whole and splits it with
``bytes.find`` (C speed) instead of streaming it through a general-purpose parser
and a temporary file per part. Only what the routes need is parsed: each part's
``name`` (and ``filename``, to tell files from text fields) and its bytes.
Anything malformed raises :class:`MalformedMultipart`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from urllib.parse import unquote

MAX_BOUNDARY = 70  # RFC 2046
MAX_PARAMS = 32  # parameters in one header value
MAX_PART_HEADER_BYTES = 8 * 1024  # one part's header block
MAX_PART_HEADER_LINES = 16
MAX_PADDING = 256  # transport padding after a boundary
_TOKEN_END = ";"


class MalformedMultipart(ValueError):
    """The body is not valid multipart/form-data."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None for a plain text field
    data: bytes


def _masked(value: str) -> str:
    """``value`` with every backslash escape (``\\x``) blanked out, same length: a quote
    left in it ends a quoted string. ``str.replace`` pairs backslashes left to right."""
    if "\0" in value:
        raise MalformedMultipart("NUL in a header parameter")
    if "\\" not in value:
        return value
    return value.replace("\\\\", "\0\0").replace('\\"', "\0\0")


def _unescaped(raw: str) -> str:
    """A quoted string's text without its backslash escapes (``\\x`` -> ``x``)."""
    if "\\" not in raw:
        return raw
    return raw.replace("\\\\", "\0").replace("\\", "").replace("\0", "\\")


def _extended(raw: str) -> str | None:
    """An RFC 5987 value, ``charset'language'percent-encoded``, decoded; None if bad."""
    charset, quote, rest = raw.partition("'")
    _language, quote2, encoded = rest.partition("'")
    if not quote or not quote2:
        return None
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        return None
    return unquote(encoded, encoding=codec, errors="replace")


def header_params(value: str) -> dict[str, str]:
    """``form-data; name="a"; filename="b.png"`` -> ``{"name": "a", "filename": "b.png"}``.

    Quoted strings with backslash escapes and RFC 5987 ``key*=charset''value`` forms
    (which win over the plain ``key``) are understood. Time and memory are linear in
    ``value``: no regular expression, and no Python loop per character.
    """
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    masked = _masked(value)
    length = len(value)
    position = value.find(_TOKEN_END)
    segments = 0
    while 0 <= position < length:
        segments += 1  # every ';', with a value or not: at most MAX_PARAMS finds of each
        if segments > MAX_PARAMS:
            raise MalformedMultipart(f"more than {MAX_PARAMS} header parameters")
        equals = value.find("=", position + 1)
        semicolon = value.find(_TOKEN_END, position + 1)
        if equals < 0 or (0 <= semicolon < equals):
            position = semicolon  # a parameter without a value: skipped
            continue
        key = value[position + 1 : equals].strip().lower()
        start = equals + 1
        padding = value[start : start + MAX_PADDING]
        start += len(padding) - len(padding.lstrip(" \t"))
        if start < length and value[start] == '"':
            close = masked.find('"', start + 1)
            if close < 0:
                raise MalformedMultipart("unterminated quoted string in a header parameter")
            raw = _unescaped(value[start + 1 : close])
            position = value.find(_TOKEN_END, close + 1)
        else:
            position = value.find(_TOKEN_END, start)
            raw = value[start : position if position >= 0 else length].strip()
        if not key:
            continue
        if key.endswith("*"):
            decoded = _extended(raw)
            if decoded is not None:
                extended[key[:-1]] = decoded
        else:
            params[key] = raw
    params.update(extended)
    return params


def boundary_of(content_type: str) -> bytes:
    boundary = header_params(content_type).get("boundary", "")
    if not 1 <= len(boundary) <= MAX_BOUNDARY or not boundary.isascii():
        raise MalformedMultipart("multipart/form-data needs a boundary of 1 to 70 characters")
    return boundary.encode("ascii")


def parse_multipart(body: bytes, content_type: str, *, max_parts: int) -> list[Part]:
    """Split ``body`` into its parts, in order. At most ``max_parts`` parts."""
    delimiter = b"--" + boundary_of(content_type)
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise MalformedMultipart("multipart body has no opening boundary")
    parts: list[Part] = []
    position = start + len(delimiter)
    separator = b"\r\n" + delimiter
    while True:
        padding = body[position : position + MAX_PADDING]  # transport padding: bounded
        position += len(padding) - len(padding.lstrip(b" \t"))
        if body.startswith(b"--", position):
            return parts  # closing delimiter; an epilogue after it is ignored
        if not body.startswith(b"\r\n", position):
            raise MalformedMultipart("multipart boundary is not followed by a line break")
        if len(parts) == max_parts:
            raise MalformedMultipart(f"too many parts (at most {max_parts})")
        headers_end = body.find(b"\r\n\r\n", position + 2, position + 4 + MAX_PART_HEADER_BYTES)
        if headers_end < 0:
            raise MalformedMultipart(
                f"multipart part has no end of headers within {MAX_PART_HEADER_BYTES} bytes"
            )
        end = body.find(separator, headers_end + 4)
        if end < 0:
            raise MalformedMultipart("multipart body is truncated (no closing boundary)")
        parts.append(_part(body[position + 2 : headers_end], body[headers_end + 4 : end]))
        position = end + len(separator)


def _part(raw_headers: bytes, data: bytes) -> Part:
    disposition = None
    lines = raw_headers.split(b"\r\n", MAX_PART_HEADER_LINES)
    if len(lines) > MAX_PART_HEADER_LINES:
        raise MalformedMultipart(f"more than {MAX_PART_HEADER_LINES} headers in a part")
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise MalformedMultipart("malformed multipart part header")
        if name.strip().lower() == b"content-disposition":
            disposition = value.decode("utf-8", "replace").strip()
    if disposition is None or not disposition.lower().startswith("form-data"):
        raise MalformedMultipart("multipart part without Content-Disposition: form-data")
    params = header_params(disposition)
    if "name" not in params:
        raise MalformedMultipart("multipart part without a name")
    return Part(name=params["name"], filename=params.get("filename"), data=data)
