"""Reading uploaded files out of a request: multipart fields or a raw ``image/*`` body.

Plain functions of the Content-Type and the bytes, used by ``service.http.inputs``.
"""

from __future__ import annotations

from service.errors import EmptyInput, InvalidInput, MalformedRequest, UnsupportedMediaType
from service.http.multipart import MalformedMultipart, Part, parse_multipart

EXTRA_PARTS = 16  # form fields beyond the files a route takes


def media_type_of(content_type: str) -> str:
    """``multipart/form-data; boundary=x`` -> ``multipart/form-data``."""
    return content_type.split(";", 1)[0].strip().lower()


def _form_parts(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    """The parts of a multipart body (whole: the upload limit bounds it)."""
    try:
        return parse_multipart(body, content_type, max_parts=max_parts)
    except MalformedMultipart as exc:
        raise MalformedRequest(str(exc)) from exc


def _file_data(part: Part, label: str) -> bytes:
    if part.filename is None:
        raise InvalidInput(f"form field '{label}' must be a file upload")
    if not part.data:
        raise EmptyInput(f"form field '{label}' holds an empty file")
    return part.data


def file_from_body(content_type: str, body: bytes, field_name: str) -> bytes:
    """One file from form field ``field_name``, or a raw body with an ``image/*`` type."""
    if not body:
        raise EmptyInput("request body is empty")
    media_type = media_type_of(content_type)
    if media_type == "multipart/form-data":
        files = [p for p in _form_parts(body, content_type, EXTRA_PARTS) if p.name == field_name]
        if not files:
            raise InvalidInput(f"missing form field '{field_name}'")
        if len(files) > 1:  # which one is meant? (/predict/<name>s takes several)
            raise InvalidInput(f"form field '{field_name}' given {len(files)} times: send one")
        return _file_data(files[0], field_name)
    if media_type.startswith("image/"):
        return body
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type or '(none)'!r}: "
        f"send multipart/form-data with field '{field_name}', or the image itself as image/*"
    )


def files_from_body(content_type: str, body: bytes, field_name: str, limit: int) -> list[bytes]:
    """1 to ``limit`` files from repeated form fields ``field_name``, in upload order."""
    if not body:
        raise EmptyInput("request body is empty")
    media_type = media_type_of(content_type)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media_type or '(none)'!r}: "
            f"send multipart/form-data with one or more fields '{field_name}'"
        )
    parts = _form_parts(body, content_type, limit + EXTRA_PARTS)
    fields = [part for part in parts if part.name == field_name]
    if not fields:
        raise InvalidInput(f"missing form field '{field_name}'")
    if len(fields) > limit:
        raise InvalidInput(f"at most {limit} images per request")
    return [_file_data(field, f"{field_name}[{i}]") for i, field in enumerate(fields)]
