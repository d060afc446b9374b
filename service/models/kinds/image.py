"""``image-classifier``: a class from an uploaded image (``digit``: MNIST digits).

Routes: ``POST /predict/<name>`` takes one image (form field ``image``, or the raw body
as ``image/*``); ``POST /predict/<name>s`` takes 1 to 256 (repeated field ``images``).
Decoding and preprocessing (``service.imaging.pipeline``) run in the preprocessing
stage, with the mean and std of the version's own metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from service.errors import ServiceError
from service.imaging.pipeline import ImageSpec, preprocess_image
from service.models.kinds.base import Decoded, KindOptions, ModelKind, Prediction, RequestInput
from service.models.kinds.base import Route, predict_path
from service.models.kinds.schemas import ModelRef
from service.models.repository import ModelVersion

MAX_IMAGES_PER_REQUEST = 256


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7])
    confidence: float = Field(ge=0, le=1, examples=[0.998])
    probabilities: list[float] = Field(min_length=10, max_length=10)


class DigitResponse(DigitPrediction):
    model: ModelRef


class DigitsResponse(BaseModel):
    predictions: list[DigitPrediction]
    model: ModelRef


def upload_body(field_name: str, *, many: bool) -> dict[str, Any]:
    """OpenAPI ``requestBody``: multipart files, and for one image the raw body too."""
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    field_schema = {"type": "array", "items": file_schema} if many else file_schema
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {field_name: field_schema},
                "required": [field_name],
            },
            "encoding": {field_name: {"contentType": "image/*"}},
        }
    }
    if not many:
        content["image/png"] = {"schema": file_schema}
        content["image/jpeg"] = {"schema": file_schema}
    return {"requestBody": {"required": True, "content": content}}


class ImageClassifier(ModelKind):
    task = "image-classifier"
    heavy_inputs = True

    def __init__(self, version: ModelVersion, options: KindOptions) -> None:
        super().__init__(version, options)
        self.spec = ImageSpec.from_metadata(version.spec.input.preprocessing)
        self._labels = tuple(version.spec.labels)
        # "7" -> 7 in replies, as the digit contract has it; other labels stay strings.
        self._label_values = [int(x) if x.isascii() and x.isdigit() else x for x in self._labels]

    def routes(self) -> list[Route]:
        return [
            Route(
                "POST",
                predict_path(self.name),
                "Classify one handwritten digit image",
                self.decode_one,
                DigitResponse,
                False,
                upload_body("image", many=False),
                (415,),
            ),
            Route(
                "POST",
                predict_path(self.name, "s"),
                f"Classify 1 to {MAX_IMAGES_PER_REQUEST} digit images, in upload order",
                self.decode_many,
                DigitsResponse,
                True,
                upload_body("images", many=True),
                (415,),
            ),
        ]

    @staticmethod
    def decode_one(request: RequestInput) -> Decoded:
        return Decoded(rows=[request.upload("image")])

    @staticmethod
    def decode_many(request: RequestInput) -> Decoded:
        return Decoded(rows=request.uploads("images", MAX_IMAGES_PER_REQUEST))

    def prepare(self, rows: Sequence[Any]) -> Sequence[Any]:
        """Decode and preprocess every image; an error names the image when there are several."""
        limit = self.options.max_image_pixels
        if len(rows) == 1:
            return preprocess_image(rows[0], self.spec, max_pixels=limit)
        prepared = []
        for index, data in enumerate(rows):
            try:
                prepared.append(preprocess_image(data, self.spec, max_pixels=limit))
            except ServiceError as exc:
                raise type(exc)(f"input {index}: {exc.detail}") from exc
        return np.concatenate(prepared, axis=0)

    def reply_rows(self, echo: list[Any] | None, prediction: Prediction) -> list[dict[str, Any]]:
        rows = []
        values = self._label_values
        for probabilities in prediction.answers.tolist():
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            rows.append(
                {"digit": values[best], "confidence": probabilities[best], "probabilities": probabilities}
            )
        return rows
