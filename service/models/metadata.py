"""The schema of ``metadata.json``, validated with errors that name the field.

Training validates what it is about to publish with :func:`validate_metadata`, and the
service validates every version it reads with the same function, so both sides hold
the same contract (docs/model-repository.md). Fields beyond these are kept as they are.
"""

from __future__ import annotations

import string
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.models.outputs import OutputKind

SCHEMA_VERSION = 1
# The model's task: which kind of model it is, and so how it is served (service.models.kinds).
TASKS = ("binary-classifier", "image-classifier", "scalar-regressor")
_HEX = frozenset(string.hexdigits.lower())
# What a declared shape may ask for: one row's elements (a 1024 x 1024 image), in all.
MAX_ROW_ELEMENTS = 1 << 20
MAX_ARTIFACTS = 64
MAX_LABEL_LENGTH = 256


class MetadataError(ValueError):
    """``metadata.json`` does not follow the schema; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Artifact(_Strict):
    sha256: str = Field(min_length=64, max_length=64)
    bytes: int = Field(ge=0)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not set(value) <= _HEX:
            raise ValueError("must be 64 lowercase hexadecimal digits")
        return value


class TensorSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    # -1 is the batch axis; the others are fixed widths.
    shape: list[int] = Field(min_length=2, max_length=8)
    dtype: str = "float32"

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[int]) -> list[int]:
        if shape[0] != -1 or any(not 1 <= d <= 1_000_000 for d in shape[1:]):
            raise ValueError("must be [-1, d1, ...] with every d between 1 and 1000000")
        elements = 1
        for dimension in shape[1:]:
            elements *= dimension
        if elements > MAX_ROW_ELEMENTS:
            raise ValueError(f"asks for {elements} elements a row, at most {MAX_ROW_ELEMENTS}")
        return shape


class InputSpec(TensorSpec):
    preprocessing: dict[str, Any] = Field(default_factory=dict)


class OutputSpec(TensorSpec):
    kind: OutputKind


class VersionMetadata(_Strict):
    """The fields the service relies on. ``task`` may be absent in versions published
    before it existed; :func:`task_of` infers it for them."""

    schema_version: int = Field(ge=1, le=SCHEMA_VERSION)
    name: str
    version: int = Field(ge=1)
    task: str | None = None
    created_at: str | None = None
    input: InputSpec
    output: OutputSpec
    labels: list[Annotated[str, Field(max_length=MAX_LABEL_LENGTH)]] = Field(
        default_factory=list, max_length=100_000
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    artifacts: dict[str, Artifact] = Field(min_length=1, max_length=MAX_ARTIFACTS)

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str | None) -> str | None:
        if task is not None and task not in TASKS:
            raise ValueError(f"must be one of {', '.join(TASKS)}")
        return task


def validate_metadata(data: object) -> VersionMetadata:
    """Check ``data`` against the schema; :class:`MetadataError` names the first bad field."""
    try:
        return VersionMetadata.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False)[:3]:
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{where}: {error['msg']}")
        raise MetadataError("metadata.json: " + "; ".join(problems)) from None


def task_of(meta: VersionMetadata) -> str:
    """The version's task, inferred for versions that predate the ``task`` field.

    This is the one place where that happens: an image input (``preprocessing.kind``
    ``mnist``) is an image classifier; a one-column output of probabilities or logits
    with two labels is a binary classifier; one column of values is a regressor.
    """
    if meta.task is not None:
        return meta.task
    if meta.input.preprocessing.get("kind") == "mnist":
        return "image-classifier"
    if meta.output.shape[-1] == 1 and meta.output.kind == "values":
        return "scalar-regressor"
    if meta.output.shape[-1] == 1 and len(meta.labels) == 2:
        return "binary-classifier"
    raise MetadataError("metadata.json: task: missing, and it cannot be inferred")
