"""Models on one number (hours studied): ``GET /predict/<name>?hours=4`` and a JSON batch.

The query parameter and the JSON field are named after the model's input
(``input.name``, ``hours`` for ``pass`` and ``points``). Values are validated by pydantic
and errors read as FastAPI's would: ``query.hours: Input should be ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from service.errors import InvalidInput, MalformedRequest
from service.models.kinds.base import Decoded, KindOptions, ModelKind, RequestInput, Route
from service.models.kinds.base import predict_path
from service.models.repository import ModelVersion

MAX_VALUE = 10_000  # hours; a version may narrow it with input.preprocessing.max
MAX_BATCH = 1024
PLAIN_DECIMAL = frozenset("0123456789.")  # what float() and pydantic read alike


def describe_errors(error: ValidationError, prefix: str) -> str:
    """``body.hours.1: Input should be a valid number`` and so on, ``;``-separated."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join([prefix, *(str(p) for p in item["loc"])])
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts) or f"{prefix}: invalid"


class ScalarInputKind(ModelKind):
    """Shared by every kind whose input is one number per row."""

    def __init__(self, version: ModelVersion, options: KindOptions) -> None:
        super().__init__(version, options)
        spec = version.spec.input
        self.input_name = spec.name
        maximum = spec.preprocessing.get("max", MAX_VALUE)
        value = Annotated[
            float,
            Field(
                ge=spec.preprocessing.get("min", 0),
                le=maximum,
                allow_inf_nan=False,
                description=f"{spec.preprocessing.get('unit', spec.name)}",
                examples=[4.0],
            ),
        ]
        self._value = TypeAdapter(value)
        self.batch_request: type[BaseModel] = create_model(
            f"{self.schema_prefix}BatchRequest",
            **{
                self.input_name: (
                    list[value],  # type: ignore[valid-type]
                    Field(min_length=1, max_length=MAX_BATCH, examples=[[1, 2.5, 7]]),
                )
            },
        )
        self._minimum = spec.preprocessing.get("min", 0)
        self._maximum = maximum

    @property
    def schema_prefix(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    def routes(self) -> list[Route]:
        path = predict_path(self.name)
        parameter = {
            "name": self.input_name,
            "in": "query",
            "required": True,
            "schema": {**self._value.json_schema(), "title": self.input_name.capitalize()},
            "description": f"{self.input_name.capitalize()}, 0-{self._maximum}",
        }
        body = {
            "required": True,
            "content": {"application/json": {"schema": self.batch_request}},
        }
        return [
            Route("GET", path, self.summary_one, self.decode_query, self.one_response, False,
                  {"parameters": [parameter]}),
            Route("POST", path, self.summary_many, self.decode_json, self.many_response, True,
                  {"requestBody": body}),
        ]

    def decode_query(self, request: RequestInput) -> Decoded:
        raw = request.query_value(self.input_name)
        where = f"query.{self.input_name}"
        if raw is None:
            raise InvalidInput(f"{where}: Field required")
        value = self._plain_value(raw)
        if value is None:  # anything else: pydantic decides, and words the error
            try:
                value = self._value.validate_python(raw)
            except ValidationError as exc:
                raise InvalidInput(describe_errors(exc, where)) from None
        return Decoded(rows=[value], echo=[value])

    def _plain_value(self, raw: str) -> float | None:
        """``4`` or ``2.5`` within range, read as pydantic would, without its overhead."""
        if not 0 < len(raw) <= 32 or not set(raw) <= PLAIN_DECIMAL or raw.count(".") > 1:
            return None
        if raw == ".":
            return None
        value = float(raw)
        return value if self._minimum <= value <= self._maximum else None

    def decode_json(self, request: RequestInput) -> Decoded:
        payload = request.json_body()
        if not isinstance(payload, dict):
            raise InvalidInput("body: Input should be a valid dictionary or object to extract fields from")
        try:
            # strict: JSON numbers only (not true, nor "1", which lax validation reads as 1.0)
            values = getattr(
                self.batch_request.model_validate(payload, strict=True), self.input_name
            )
        except ValidationError as exc:
            raise InvalidInput(describe_errors(exc, "body")) from None
        return Decoded(rows=values, echo=values)

    def model_rows(self, name: str, array: np.ndarray) -> np.ndarray:
        """One value per row, flat (stacked with the friendly routes' rows), in range."""
        rows = super().model_rows(name, array).reshape(-1)
        if rows.min() < self._minimum or rows.max() > self._maximum:
            raise MalformedRequest(
                f"input '{name}': values must be from {self._minimum} to {self._maximum}"
            )
        return rows

    def prepare(self, rows: Sequence[Any]) -> Sequence[Any]:
        return rows  # validated numbers already; stacked once per batch

    def stack(self, items: Sequence[Sequence[Any]]) -> np.ndarray:
        values = items[0] if len(items) == 1 else list(chain.from_iterable(items))
        return np.asarray(values, dtype=np.float32).reshape(len(values), 1)

    # Subclasses: summaries and response models of the two routes.
    summary_one: str = ""
    summary_many: str = ""
    one_response: type[BaseModel]
    many_response: type[BaseModel]
