"""Reading uploaded images out of a request: multipart fields or a raw ``image/*`` body.

``image_from_body`` and ``images_from_body`` work on the Content-Type and the bytes
alone, so the ASGI fast path and the FastAPI routes read uploads the same way.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from service.api.multipart import MalformedMultipart, Part, parse_multipart
from service.errors import EmptyInput, InvalidInput, MalformedRequest, UnsupportedMediaType

MAX_IMAGES_PER_REQUEST = 256


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


def image_from_body(content_type: str, body: bytes) -> bytes:
    """One image from form field ``image``, or a raw body with an ``image/*`` type."""
    if not body:
        raise EmptyInput("request body is empty")
    media_type = media_type_of(content_type)
    if media_type == "multipart/form-data":
        images = [p for p in _form_parts(body, content_type, 16) if p.name == "image"]
        if not images:
            raise InvalidInput("missing form field 'image'")
        return _file_data(images[0], "image")
    if media_type.startswith("image/"):
        return body
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type or '(none)'!r}: "
        "send multipart/form-data with field 'image', or the image itself as image/*"
    )


def images_from_body(content_type: str, body: bytes) -> list[bytes]:
    """1 to 256 images from repeated form fields ``images``, in upload order."""
    if not body:
        raise EmptyInput("request body is empty")
    media_type = media_type_of(content_type)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media_type or '(none)'!r}: "
            "send multipart/form-data with one or more fields 'images'"
        )
    parts = _form_parts(body, content_type, MAX_IMAGES_PER_REQUEST + 16)
    fields = [part for part in parts if part.name == "images"]
    if not fields:
        raise InvalidInput("missing form field 'images'")
    if len(fields) > MAX_IMAGES_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_IMAGES_PER_REQUEST} images per request")
    return [_file_data(field, f"images[{i}]") for i, field in enumerate(fields)]


async def read_image(request: Request) -> bytes:
    return image_from_body(request.headers.get("content-type", ""), await request.body())


async def read_images(request: Request) -> list[bytes]:
    return images_from_body(request.headers.get("content-type", ""), await request.body())


def image_request_body(*, multipart_field: str, many: bool) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for routes that read their body by hand."""
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    field_schema = {"type": "array", "items": file_schema} if many else file_schema
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {multipart_field: field_schema},
                "required": [multipart_field],
            },
            "encoding": {multipart_field: {"contentType": "image/*"}},
        }
    }
    if not many:
        content["image/png"] = {"schema": file_schema}
        content["image/jpeg"] = {"schema": file_schema}
    return {"requestBody": {"required": True, "content": content}}
