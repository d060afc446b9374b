"""Prediction routes: ``/predict/pass`` and ``/predict/digit(s)``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

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


def _model_ref(prediction: Prediction) -> dict[str, Any]:
    return {"name": prediction.name, "version": prediction.version}


def _pass_rows(hours: list[float], prediction: Prediction) -> list[dict[str, Any]]:
    return [
        {"hours": h, "probability": p, "passed": p >= 0.5}
        for h, p in zip(hours, prediction.probabilities[:, -1].tolist(), strict=True)
    ]


def _digit_rows(prediction: Prediction) -> list[dict[str, Any]]:
    rows = []
    for probabilities in prediction.probabilities.tolist():
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        rows.append(
            {
                "digit": int(prediction.labels[best]),
                "confidence": probabilities[best],
                "probabilities": probabilities,
            }
        )
    return rows


# Handlers build their JSON directly (the shapes are fixed and built here) and declare
# ``response_model`` for the OpenAPI document only: FastAPI skips validating and
# re-serialising a returned Response, which is a measurable share of a request.


def _json(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


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
    return _json({**_pass_rows([hours], prediction)[0], "model": _model_ref(prediction)})


@router.post(
    "/pass",
    response_model=PassBatchResponse,
    responses=_errors(),
    summary="P(pass) for up to 1024 values",
)
async def predict_pass_batch(request: Request, body: PassBatchRequest) -> Response:
    prediction: Prediction = await runtime_of(request).predict("pass", body.hours)
    return _json(
        {"predictions": _pass_rows(body.hours, prediction), "model": _model_ref(prediction)}
    )


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
    return _json({**_digit_rows(prediction)[0], "model": _model_ref(prediction)})


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
    return _json({"predictions": _digit_rows(prediction), "model": _model_ref(prediction)})
