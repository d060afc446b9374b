"""What a model kind is: one class per task, in the manner of LitServe's ``LitAPI``.

A kind says, for every model of its task:

* its friendly routes, their OpenAPI description, and how each decodes a request's
  input (``Route.decode``, given a framework-free :class:`RequestInput`);
* how those inputs become rows for the backend (``prepare``; ``heavy_inputs`` kinds are
  prepared in the preprocessing stage, off the event loop);
* how the model's answers become the reply (``reply_rows``);
* its tensors for the Open Inference Protocol (``tensor_inputs``, ``tensor_outputs``,
  ``rows_from_tensors``, ``class_scores``), which ``service.protocol`` serves.

Kinds are built per loaded version, from its metadata. They import no web framework:
the HTTP layer (``service.http``) implements :class:`RequestInput` and serves the routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel

from service.errors import MalformedRequest
from service.models.kinds.tensors import TensorDecl, TensorRows
from service.models.repository import ModelVersion

PREDICT_PREFIX = "/predict/"


class RequestInput(Protocol):
    """A request as a route's ``decode`` sees it (the body is already read, within limits)."""

    def query_value(self, name: str) -> str | None:
        """The last value of query parameter ``name``, percent-decoded; None if absent."""

    def json_body(self) -> Any:
        """The body parsed as JSON; raises a 4xx ``ServiceError`` when it is not JSON."""

    def upload(self, field_name: str) -> bytes:
        """One file: form field ``field_name``, or a raw body with an ``image/*`` type."""

    def uploads(self, field_name: str, limit: int) -> list[bytes]:
        """1 to ``limit`` files from repeated form fields ``field_name``, in order."""


@dataclass(slots=True)  # not frozen: built per request, and frozen init costs more
class Decoded:
    """A request's inputs: one raw value per row, and what the reply repeats per row."""

    rows: list[Any]
    echo: list[Any] | None = None
    options: dict[str, Any] | None = None  # e.g. explain=true on an image route


@dataclass(frozen=True)
class Route:
    """One friendly route of a model, e.g. ``GET /predict/pass``."""

    method: str
    path: str
    summary: str
    decode: Callable[[RequestInput], Decoded]
    response_model: type[BaseModel]
    many: bool  # the reply is {"predictions": [...], "model": ...} rather than one row
    openapi: dict[str, Any] = field(default_factory=dict)  # parameters / requestBody
    error_statuses: tuple[int, ...] = ()


@dataclass(slots=True)
class Prediction:
    """One request's answers (``output.kind`` applied), and the version that gave them."""

    answers: np.ndarray  # [rows, width]
    name: str
    version: int
    labels: tuple[str, ...]
    kind: ModelKind  # the version's kind: it writes the reply
    inputs: Sequence[Any] = ()  # the prepared rows the model was given


@dataclass(frozen=True)
class KindOptions:
    """Service settings that kinds need."""

    max_image_pixels: int = 25_000_000


class ModelKind:
    """Base class of every kind. Subclasses set ``task`` and implement the hooks."""

    task: ClassVar[str]
    heavy_inputs: ClassVar[bool] = False  # prepare in the preprocessing stage

    def __init__(self, version: ModelVersion, options: KindOptions) -> None:
        self.version = version
        self.options = options

    @property
    def name(self) -> str:
        return self.version.name

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def prepare(self, rows: Sequence[Any]) -> Sequence[Any]:
        """One request's raw rows -> its prepared rows (``heavy_inputs``: in the stage).

        What it returns has one entry per row; :meth:`stack` joins a batch of them.
        """
        raise NotImplementedError

    def cost(self, rows: Sequence[Any]) -> int:
        """What preparing ``rows`` costs, in bytes of input (the stage's lanes go by it)."""
        return sum(len(row) if isinstance(row, bytes | bytearray) else 8 for row in rows)

    def stack(self, items: Sequence[Sequence[Any]]) -> np.ndarray:
        """A batch of requests' prepared rows -> float32 ``[rows, *input.shape[1:]]``,
        in order (called in the inference thread, once per batch)."""
        return np.concatenate(items, axis=0) if len(items) > 1 else np.asarray(items[0])

    def reply_rows(self, decoded: Decoded, prediction: Prediction) -> list[dict[str, Any]]:
        raise NotImplementedError

    def reply(self, route: Route, decoded: Decoded, prediction: Prediction) -> dict[str, Any]:
        """The reply body of ``route`` for one request."""
        rows = self.reply_rows(decoded, prediction)
        model = {"name": prediction.name, "version": prediction.version}
        if route.many:
            return {"predictions": rows, "model": model}
        return {**rows[0], "model": model}

    # The Open Inference Protocol's view (service.protocol): tensors in and out.

    @property
    def answer_name(self) -> str:
        """The output tensor's name: what the answers are (logits are softmaxed first)."""
        spec = self.version.spec.output
        return "probabilities" if spec.kind == "logits" and spec.shape[-1] > 1 else spec.name

    def tensor_inputs(self) -> list[TensorDecl]:
        """The model's input tensor, as its metadata declares it."""
        spec = self.version.spec.input
        return [
            TensorDecl(
                spec.name,
                "FP32",
                tuple(spec.shape),
                description="the model's input, prepared as parameters.preprocessing says",
                parameters={"preprocessing": dict(spec.preprocessing)},
            )
        ]

    def tensor_outputs(self) -> list[TensorDecl]:
        spec = self.version.spec.output
        labels = list(self.version.spec.labels)
        return [
            TensorDecl(
                self.answer_name,
                "FP32",
                tuple(spec.shape),
                description=f"the answers: {spec.kind} as the friendly route returns them"
                if spec.kind != "logits"
                else "the answers: softmax of the logits, as the friendly route returns them",
                parameters={"labels": labels} if labels else {},
            )
        ]

    def rows_from_tensors(self, tensors: Mapping[str, Any]) -> TensorRows:
        """Input tensors (checked against ``tensor_inputs`` already) -> rows."""
        spec = self.version.spec.input
        array = tensors.get(spec.name)
        if array is None:
            raise MalformedRequest(f"input '{spec.name}' is required")
        return TensorRows(self.model_rows(spec.name, array), prepared=True)

    def model_rows(self, name: str, array: np.ndarray) -> np.ndarray:
        """A tensor of model input -> float32 ``[rows, *input.shape[1:]]``, finite."""
        features = self.version.spec.input.shape[1:]
        rows = np.asarray(array, dtype=np.float32)
        if rows.ndim == 0 or rows.shape[0] == 0:
            raise MalformedRequest(f"input '{name}': at least one row")
        rows = rows.reshape(rows.shape[0], *features)
        if not np.isfinite(rows).all():
            raise MalformedRequest(f"input '{name}': every value must be finite")
        return rows

    def output_tensors(self, answers: np.ndarray) -> dict[str, np.ndarray]:
        return {self.answer_name: answers}

    def class_scores(self, answers: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """Every class's score per row, and the labels (the classification extension).

        One column with two labels is P(second label): its classes are [1 - p, p].
        """
        labels = tuple(self.version.spec.labels)
        if answers.shape[-1] == 1 and len(labels) == 2:
            positive = answers.reshape(-1, 1)
            return np.concatenate([1.0 - positive, positive], axis=1), labels
        return answers.reshape(len(answers), -1), labels

    def probe(self) -> np.ndarray:
        """A prepared input of one row, for the warm-up."""
        features = self.version.spec.input.shape[1:]
        return np.random.default_rng(0).standard_normal((1, *features)).astype(np.float32)


def predict_path(name: str, suffix: str = "") -> str:
    return f"{PREDICT_PREFIX}{name}{suffix}"
