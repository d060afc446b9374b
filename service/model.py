"""A loaded, validated model version: backend + input preparation + output meaning."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from service.backends import Backend, BackendError, create_backend
from service.collate import Prepare, collate, split
from service.errors import InvalidInput, ServiceError
from service.preprocess import ImageSpec, preprocess_image
from service.repository import ModelVersion


@dataclass(frozen=True)
class Prediction:
    """One request's output rows as probabilities, and which model made them."""

    probabilities: np.ndarray  # [rows, classes]
    name: str
    version: int
    labels: tuple[str, ...]


@dataclass
class LoadedModel:
    version: ModelVersion
    backend: Backend
    prepare: Prepare
    output_kind: str
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.version.metadata["labels"])

    def predict(self, items: list[Sequence[Any]]) -> list[Prediction | ServiceError]:
        """Run one batch (called in the batcher's worker thread)."""
        collated = collate(items, self.prepare)
        if collated.batch is None:
            return list(collated.errors)  # type: ignore[arg-type]
        probabilities = to_probabilities(self.backend.run(collated.batch), self.output_kind)
        labels = self.labels
        return [
            result
            if isinstance(result, ServiceError)
            else Prediction(result, self.name, self.version.version, labels)
            for result in split(probabilities, collated)
        ]

    def describe(self) -> dict[str, Any]:
        meta = self.version.metadata
        return {
            "name": self.name,
            "version": self.version.version,
            "backend": self.backend.name,
            "device": self.backend.device,
            "providers": list(self.backend.providers),
            "metrics": meta.get("metrics", {}),
            "labels": list(self.labels),
            "created_at": meta.get("created_at"),
            "loaded_at": self.loaded_at.isoformat(),
        }


def to_probabilities(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Turn raw model outputs into probabilities, as the metadata's ``output.kind`` says."""
    outputs = outputs.astype(np.float32, copy=False)
    if kind == "probabilities":
        return outputs
    if outputs.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-outputs))
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def prepare_scalar(value: Any) -> np.ndarray:
    """One number -> ``[1, 1]`` float32 (the ``pass`` model's input)."""
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput("input must be a finite number")
    return np.array([[number]], dtype=np.float32)


def make_preparer(metadata: dict[str, Any], max_image_pixels: int) -> Prepare:
    preprocessing = metadata["input"].get("preprocessing", {})
    kind = preprocessing.get("kind", "none")
    if kind == "mnist":
        spec = ImageSpec.from_metadata(preprocessing)
        return partial(preprocess_image, spec=spec, max_pixels=max_image_pixels)
    if kind == "none":
        return prepare_scalar
    raise BackendError(f"unknown input preprocessing kind {kind!r}")


def load_model(
    version: ModelVersion,
    *,
    backend: str,
    device: str,
    intra_op_threads: int,
    max_image_pixels: int,
) -> LoadedModel:
    """Build the backend for ``version`` and prove it works with a warm-up batch."""
    meta = version.metadata
    model = LoadedModel(
        version=version,
        backend=create_backend(
            backend,
            version.artifact(backend),
            device=device,
            input_name=meta["input"]["name"],
            output_name=meta["output"]["name"],
            intra_op_threads=intra_op_threads,
        ),
        prepare=make_preparer(meta, max_image_pixels),
        output_kind=meta["output"]["kind"],
    )
    warm_up(model)
    return model


def warm_up(model: LoadedModel) -> None:
    """Run batches of 1 and 2; outputs must be finite and of the declared width."""
    meta = model.version.metadata
    features = [int(d) for d in meta["input"]["shape"][1:]]
    width = int(meta["output"]["shape"][-1])
    rng = np.random.default_rng(0)
    for rows in (1, 2):
        batch = rng.standard_normal((rows, *features)).astype(np.float32)
        try:
            outputs = model.backend.run(batch)
        except Exception as exc:  # any runtime failure disqualifies the version
            raise BackendError(f"warm-up inference failed: {exc}") from exc
        if outputs.shape != (rows, width):
            raise BackendError(f"warm-up output shape {outputs.shape}, expected {(rows, width)}")
        if not np.all(np.isfinite(outputs)):
            raise BackendError("warm-up output is not finite")
