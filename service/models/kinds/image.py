"""``image-classifier``: a class from an uploaded image (``digit``: MNIST digits).

Routes: ``POST /predict/<name>`` takes one image (form field ``image``, or the raw body
as ``image/*``); ``POST /predict/<name>s`` takes 1 to 256 (repeated field ``images``).
Decoding and preprocessing (``service.imaging.pipeline``) run in the preprocessing
stage, with the mean and std of the version's own metadata.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from service.errors import InvalidInput, MalformedRequest, ServiceError
from service.imaging.confidence import SOLID_ABOVE, UNCERTAIN_BELOW, uncertain_flags
from service.imaging.pipeline import ImageSpec, preprocess_image
from service.imaging.png import grey_png
from service.models.kinds.base import Decoded, KindOptions, ModelKind, Prediction, RequestInput
from service.models.kinds.base import Route, predict_path
from service.models.kinds.scalar import describe_errors
from service.models.kinds.schemas import ModelRef
from service.models.kinds.tensors import TensorDecl, TensorRows
from service.models.repository import ModelVersion

MAX_IMAGES_PER_REQUEST = 256


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7])
    confidence: float = Field(ge=0, le=1, examples=[0.998])
    uncertain: bool = Field(
        examples=[False],
        description=f"confidence is under {UNCERTAIN_BELOW}, or the image the model saw is "
        f"a solid shape rather than strokes (over {SOLID_ABOVE:.0%} of its ink 2 px or more "
        "inside it): the reading is not to be trusted (a non-digit, or a digit too "
        "unclear); the digit is still the most likely",
    )
    probabilities: list[float] = Field(min_length=10, max_length=10)
    canvas: str | None = Field(
        None, description="With explain=true only: the image the model saw, a PNG data URL"
    )


EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False, "title": "Explain"},
    "description": "Also return `canvas`: the image the model saw after preprocessing "
    "(28x28, light digit on black), as a PNG data URL",
}
_explain = TypeAdapter(bool)


def explain_option(request: RequestInput) -> dict[str, Any] | None:
    """``?explain=true`` (any of pydantic's booleans); None when absent."""
    raw = request.query_value("explain")
    if raw is None:
        return None
    try:
        return {"explain": _explain.validate_python(raw)}
    except ValidationError as exc:
        raise InvalidInput(describe_errors(exc, "query.explain")) from None


def canvas_png_data_url(canvas: np.ndarray) -> str:
    """uint8 ``(height, width)`` grey levels -> ``"data:image/png;base64,..."``."""
    return "data:image/png;base64," + base64.b64encode(grey_png(canvas)).decode("ascii")


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
    return {"parameters": [EXPLAIN_PARAMETER], "requestBody": {"required": True, "content": content}}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def prepare_images(spec: ImageSpec, max_pixels: int, rows: Sequence[bytes]) -> np.ndarray:
    """Decode and preprocess every image; an error names the image when there are several."""
    if len(rows) == 1:
        return preprocess_image(rows[0], spec, max_pixels=max_pixels)
    prepared = []
    for index, data in enumerate(rows):
        try:
            prepared.append(preprocess_image(data, spec, max_pixels=max_pixels))
        except ServiceError as exc:
            raise type(exc)(f"input {index}: {exc.detail}") from exc
    return np.concatenate(prepared, axis=0)


class ImageClassifier(ModelKind):
    task = "image-classifier"
    heavy_inputs = True

    def __init__(self, version: ModelVersion, options: KindOptions) -> None:
        super().__init__(version, options)
        self.spec = ImageSpec.from_metadata(version.spec.input.preprocessing)
        # A partial of a module function, not a method: it travels to the large lane's
        # process (service.serving.stage) without the rest of this object.
        self.prepare = functools.partial(prepare_images, self.spec, options.max_image_pixels)
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
        return Decoded(rows=[request.upload("image")], options=explain_option(request))

    @staticmethod
    def decode_many(request: RequestInput) -> Decoded:
        images = request.uploads("images", MAX_IMAGES_PER_REQUEST)
        return Decoded(rows=images, options=explain_option(request))

    @property
    def bytes_input(self) -> str:
        """The protocol input of encoded images: ``<input.name>_bytes``."""
        return f"{self.version.spec.input.name}_bytes"

    def tensor_inputs(self) -> list[TensorDecl]:
        """The model tensor ([-1, 784] or [-1, 1, 28, 28], normalised), or encoded images."""
        (model_input,) = super().tensor_inputs()
        spec = self.spec
        model_input = dataclasses.replace(
            model_input,
            alternative_shapes=((-1, 1, spec.height, spec.width),),
            description=f"pixels in [0, 1], normalised: (pixel - {spec.mean}) / {spec.std}; "
            f"or send {self.bytes_input} instead",
        )
        encoded = TensorDecl(
            self.bytes_input,
            "BYTES",
            (-1, 1),
            alternative_shapes=((-1,),),
            description=f"encoded images (PNG, JPEG, ...), one per element, preprocessed as "
            f"{predict_path(self.name)} does; or send {model_input.name} instead",
            parameters={"max_elements": MAX_IMAGES_PER_REQUEST},
        )
        return [model_input, encoded]

    def rows_from_tensors(self, tensors: Mapping[str, Any]) -> TensorRows:
        images = tensors.get(self.bytes_input)
        if images is None:
            return super().rows_from_tensors(tensors)
        if len(tensors) > 1:
            raise MalformedRequest(
                f"send either {self.bytes_input} or {self.version.spec.input.name}, not both"
            )
        if not 1 <= len(images) <= MAX_IMAGES_PER_REQUEST:
            raise MalformedRequest(
                f"input '{self.bytes_input}': 1 to {MAX_IMAGES_PER_REQUEST} images"
            )
        return TensorRows(list(images), prepared=False)

    def cost(self, rows: Sequence[Any]) -> int:
        """Bytes, or for a PNG a quarter of its pixels if more: a small file can hold a
        large image, and decoding costs by the pixel (the header says how many)."""
        total = 0
        for data in rows:
            total += len(data)
            if data[:8] == PNG_SIGNATURE and len(data) >= 24:
                width, height = struct.unpack(">II", data[16:24])
                total += width * height // 4
        return total

    def probe(self) -> np.ndarray:
        """A synthetic dark stroke on white, through this version's own preprocessing:
        the warm-up checks that what it produces has the declared input shape."""
        image = Image.new("L", (64, 64), 255)
        ImageDraw.Draw(image).line((32, 10, 30, 54), fill=0, width=6)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        prepared = prepare_images(self.spec, self.options.max_image_pixels, [buffer.getvalue()])
        return np.asarray(prepared, dtype=np.float32).reshape(1, -1)

    def reply_rows(self, decoded: Decoded, prediction: Prediction) -> list[dict[str, Any]]:
        answers = prediction.answers
        best = answers.argmax(axis=1)
        confidences = answers[np.arange(len(answers)), best]
        # what the model saw: a solid shape there is uncertain whatever the confidence
        canvases = self.spec.denormalize(np.concatenate(list(prediction.inputs)))
        uncertain = uncertain_flags(confidences, canvases)
        values = self._label_values
        rows = [
            {
                "digit": values[int(best[index])],
                "confidence": float(confidences[index]),
                "uncertain": bool(uncertain[index]),
                "probabilities": probabilities,
            }
            for index, probabilities in enumerate(answers.tolist())
        ]
        if decoded.options and decoded.options.get("explain"):
            for row, canvas in zip(rows, canvases, strict=True):
                row["canvas"] = canvas_png_data_url(canvas)
        return rows
