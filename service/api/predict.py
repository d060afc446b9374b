"""Prediction routes: ``/predict/pass`` and ``/predict/digit(s)``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from service.api import replies
from service.api.deps import runtime_of
from service.api.schemas import (
    DigitResponse,
    DigitsResponse,
    ErrorResponse,
    Hours,
    PassBatchRequest,
    PassBatchResponse,
    PassResponse,
)
from service.api.uploads import image_request_body, read_image, read_images
from service.model import Prediction

router = APIRouter(prefix="/predict", tags=["predict"])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    common = (400, 413, 422, 500, 503, 504)  # 400/413: unreadable or oversized bodies
    return {code: {"model": ErrorResponse} for code in sorted({*codes, *common})}


# Handlers return their JSON as a ready ``Response`` and declare ``response_model`` for
# the OpenAPI document only: FastAPI skips validating and re-serialising a returned
# Response, which is a measurable share of a request. The bodies come from
# ``service.api.replies``, shared with the ASGI fast path (``service.api.fastpath``).


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get(
    "/pass",
    response_model=PassResponse,
    responses=_errors(),
    summary="P(pass) for hours studied",
)
async def predict_pass(
    request: Request, hours: Annotated[Hours, Query(description="Hours studied, 0-10000")]
) -> Response:
    prediction: Prediction = await runtime_of(request).predict("pass", [hours])
    return _json(replies.pass_reply(hours, prediction))


@router.post(
    "/pass",
    response_model=PassBatchResponse,
    responses=_errors(),
    summary="P(pass) for up to 1024 values",
)
async def predict_pass_batch(request: Request, body: PassBatchRequest) -> Response:
    prediction: Prediction = await runtime_of(request).predict("pass", body.hours)
    return _json(replies.pass_batch_reply(body.hours, prediction))


@router.post(
    "/digit",
    response_model=DigitResponse,
    responses=_errors(415),
    summary="Classify one handwritten digit image",
    openapi_extra=image_request_body(multipart_field="image", many=False),
)
async def predict_digit(request: Request) -> Response:
    image = await read_image(request)
    prediction: Prediction = await runtime_of(request).predict("digit", [image])
    return _json(replies.digit_reply(prediction))


@router.post(
    "/digits",
    response_model=DigitsResponse,
    responses=_errors(415),
    summary="Classify 1 to 256 digit images, in upload order",
    openapi_extra=image_request_body(multipart_field="images", many=True),
)
async def predict_digits(request: Request) -> Response:
    images = await read_images(request)
    prediction: Prediction = await runtime_of(request).predict("digit", images)
    return _json(replies.digits_reply(prediction))
