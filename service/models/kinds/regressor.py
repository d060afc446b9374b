"""``scalar-regressor``: a number from a number (``points``: hours -> points).

The reply names the answer after the model's output (``output.name``, ``points``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.models.kinds.base import Decoded, Prediction
from service.models.kinds.scalar import ScalarInputKind
from service.models.kinds.schemas import ModelRef


class PointsPrediction(BaseModel):
    hours: float = Field(examples=[4.0])
    points: float = Field(examples=[8.0])


class PointsResponse(PointsPrediction):
    model: ModelRef


class PointsBatchResponse(BaseModel):
    predictions: list[PointsPrediction]
    model: ModelRef


class ScalarRegressor(ScalarInputKind):
    task = "scalar-regressor"
    summary_one = "Predicted value for one input"
    summary_many = "Predicted values for up to 1024 inputs"
    one_response = PointsResponse
    many_response = PointsBatchResponse

    def reply_rows(self, decoded: Decoded, prediction: Prediction) -> list[dict[str, Any]]:
        echo = decoded.echo
        assert echo is not None
        key = self.version.spec.output.name
        return [
            {self.input_name: x, key: y}
            for x, y in zip(echo, prediction.answers[:, 0].tolist(), strict=True)
        ]
