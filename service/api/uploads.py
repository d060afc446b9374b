"""Reading uploaded images out of a request: multipart fields or a raw ``image/*`` body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from service.errors import EmptyInput, InvalidInput, UnsupportedMediaType

MAX_IMAGES_PER_REQUEST = 256


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _reject_empty(request: Request) -> None:
    if request.headers.get("content-length") == "0":
        raise EmptyInput("request body is empty")


async def _read_part(field: Any, name: str) -> bytes:
    if not isinstance(field, UploadFile):
        raise InvalidInput(f"form field '{name}' must be a file upload")
    data = await field.read()
    if not data:
        raise EmptyInput(f"form field '{name}' holds an empty file")
    return data


async def read_image(request: Request) -> bytes:
    """One image from form field ``image``, or from a raw body with an ``image/*`` type."""
    media_type = _media_type(request)
    _reject_empty(request)
    if media_type == "multipart/form-data":
        form = await request.form(max_files=2, max_fields=16)
        if not form:
            raise EmptyInput("request body is empty")
        if "image" not in form:
            raise InvalidInput("missing form field 'image'")
        return await _read_part(form["image"], "image")
    if media_type.startswith("image/"):
        data = await request.body()
        if not data:
            raise EmptyInput("request body is empty")
        return data
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type or '(none)'!r}: "
        "send multipart/form-data with field 'image', or the image itself as image/*"
    )


async def read_images(request: Request) -> list[bytes]:
    """1 to 256 images from repeated form fields ``images``, in upload order."""
    media_type = _media_type(request)
    _reject_empty(request)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media_type or '(none)'!r}: "
            "send multipart/form-data with one or more fields 'images'"
        )
    form = await request.form(max_files=MAX_IMAGES_PER_REQUEST + 1, max_fields=16)
    if not form:
        raise EmptyInput("request body is empty")
    fields = form.getlist("images")
    if not fields:
        raise InvalidInput("missing form field 'images'")
    if len(fields) > MAX_IMAGES_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_IMAGES_PER_REQUEST} images per request")
    return [await _read_part(field, f"images[{i}]") for i, field in enumerate(fields)]


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
