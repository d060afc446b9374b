"""``binary-classifier``: P(positive) from one number (``pass``: hours -> P(pass))."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.models.kinds.base import Decoded, Prediction
from service.models.kinds.scalar import ScalarInputKind
from service.models.kinds.schemas import ModelRef


class PassPrediction(BaseModel):
    hours: float = Field(examples=[4.0])
    probability: float = Field(ge=0, le=1, examples=[0.97])
    passed: bool = Field(examples=[True])


class PassResponse(PassPrediction):
    model: ModelRef


class PassBatchResponse(BaseModel):
    predictions: list[PassPrediction]
    model: ModelRef


class BinaryClassifier(ScalarInputKind):
    """The answer's last column is P(positive); ``passed`` is ``probability >= 0.5``."""

    task = "binary-classifier"
    summary_one = "P(pass) for hours studied"
    summary_many = "P(pass) for up to 1024 values"
    one_response = PassResponse
    many_response = PassBatchResponse

    def reply_rows(self, decoded: Decoded, prediction: Prediction) -> list[dict[str, Any]]:
        echo = decoded.echo
        assert echo is not None
        return [
            {self.input_name: x, "probability": p, "passed": p >= 0.5}
            for x, p in zip(echo, prediction.answers[:, -1].tolist(), strict=True)
        ]
