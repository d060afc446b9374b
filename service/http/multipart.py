"""A small, strict ``multipart/form-data`` reader for bodies already held in memory.

The upload limit bounds every body, so the service reads it whole and splits it with
``bytes.find`` (C speed) instead of streaming it through a general-purpose parser
and a temporary file per part. Only what the routes need is parsed: each part's
``name`` (and ``filename``, to tell files from text fields) and its bytes.
Anything malformed raises :class:`MalformedMultipart`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BOUNDARY = 70  # RFC 2046
_ESCAPED = re.compile(r"\\(.)")
_PARAM = re.compile(
    r';\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)', re.ASCII
)


class MalformedMultipart(ValueError):
    """The body is not valid multipart/form-data."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None for a plain text field
    data: bytes


def header_params(value: str) -> dict[str, str]:
    """``form-data; name="a"; filename="b.png"`` -> ``{"name": "a", "filename": "b.png"}``."""
    params = {}
    for key, raw in _PARAM.findall(value):
        if raw.startswith('"'):
            raw = raw[1:-1]
            if "\\" in raw:
                raw = _ESCAPED.sub(r"\1", raw)
        params[key.lower()] = raw
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
        while body[position : position + 1] in (b" ", b"\t"):  # transport padding
            position += 1
        if body.startswith(b"--", position):
            return parts  # closing delimiter; an epilogue after it is ignored
        if not body.startswith(b"\r\n", position):
            raise MalformedMultipart("multipart boundary is not followed by a line break")
        if len(parts) == max_parts:
            raise MalformedMultipart(f"too many parts (at most {max_parts})")
        headers_end = body.find(b"\r\n\r\n", position + 2)
        if headers_end < 0:
            raise MalformedMultipart("multipart part has no end of headers")
        end = body.find(separator, headers_end + 4)
        if end < 0:
            raise MalformedMultipart("multipart body is truncated (no closing boundary)")
        parts.append(_part(body[position + 2 : headers_end], body[headers_end + 4 : end]))
        position = end + len(separator)


def _part(raw_headers: bytes, data: bytes) -> Part:
    disposition = None
    for line in raw_headers.split(b"\r\n"):
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
