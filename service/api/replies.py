"""Response bodies of the prediction routes, and of every error, as JSON bytes.

Plain Python, shared by the FastAPI routes (``service.api.predict``) and the ASGI
fast path (``service.api.fastpath``), so both answer byte for byte the same.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from service.errors import ServiceError
from service.logs import log_event
from service.model import Prediction

logger = logging.getLogger("service.requests")

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def json_bytes(payload: dict[str, Any]) -> bytes:
    """Compact JSON. Probabilities are finite by construction; NaN would be a bug."""
    return _encode(payload).encode()


def model_ref(prediction: Prediction) -> dict[str, Any]:
    return {"name": prediction.name, "version": prediction.version}


def pass_rows(hours: list[float], prediction: Prediction) -> list[dict[str, Any]]:
    return [
        {"hours": h, "probability": p, "passed": p >= 0.5}
        for h, p in zip(hours, prediction.probabilities[:, -1].tolist(), strict=True)
    ]


def digit_rows(prediction: Prediction) -> list[dict[str, Any]]:
    rows = []
    labels = prediction.labels
    for probabilities in prediction.probabilities.tolist():
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        rows.append(
            {
                "digit": int(labels[best]),
                "confidence": probabilities[best],
                "probabilities": probabilities,
            }
        )
    return rows


def pass_reply(hours: float, prediction: Prediction) -> bytes:
    """``GET /predict/pass``: one row, and the model that answered."""
    return json_bytes({**pass_rows([hours], prediction)[0], "model": model_ref(prediction)})


def pass_batch_reply(hours: list[float], prediction: Prediction) -> bytes:
    return json_bytes({"predictions": pass_rows(hours, prediction), "model": model_ref(prediction)})


def digit_reply(prediction: Prediction) -> bytes:
    """``POST /predict/digit``: one image's answer, and the model that answered."""
    return json_bytes({**digit_rows(prediction)[0], "model": model_ref(prediction)})


def digits_reply(prediction: Prediction) -> bytes:
    return json_bytes({"predictions": digit_rows(prediction), "model": model_ref(prediction)})


def error_reply(detail: str) -> bytes:
    """Every error's body: ``{"detail": "..."}``, encoded as Starlette's JSONResponse does."""
    return json.dumps({"detail": detail}, ensure_ascii=False, separators=(",", ":")).encode()


def note_service_error(path: str, exc: ServiceError) -> None:
    """Log the service's own failures (5xx); a client's mistakes (4xx) are not logged."""
    if exc.status_code >= 500:
        log_event(
            logger,
            "request_failed",
            logging.WARNING,
            path=path,
            status=exc.status_code,
            detail=exc.detail,
        )


def note_unexpected_error(path: str, exc: Exception) -> None:
    log_event(logger, "unhandled_error", logging.ERROR, path=path, error=repr(exc))
