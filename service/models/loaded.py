"""A loaded, warmed-up model version: its backend, its kind, and what its outputs mean."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from service.models.backends import Backend, BackendError, create_backend
from service.models.kinds import KINDS, KindOptions, ModelKind
from service.models.metadata import task_of
from service.models.outputs import interpret
from service.models.repository import ModelVersion


@dataclass
class LoadedModel:
    version: ModelVersion
    backend: Backend
    kind: ModelKind
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Read on every request: computed once.
    name: str = field(init=False)
    number: int = field(init=False)
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.version.name
        self.number = self.version.version
        self.labels = tuple(self.version.spec.labels)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One prepared batch -> answers ``[rows, width]`` (called in the inference thread)."""
        return interpret(self.backend.run(batch), self.version.spec.output.kind)

    def describe(self) -> dict[str, Any]:
        spec = self.version.spec
        return {
            "name": self.name,
            "version": self.number,
            "task": self.kind.task,
            "backend": self.backend.name,
            "device": self.backend.device,
            "providers": list(self.backend.providers),
            "metrics": spec.metrics,
            "labels": list(self.labels),
            "created_at": spec.created_at,
            "loaded_at": self.loaded_at.isoformat(),
        }


def load_model(
    version: ModelVersion,
    *,
    backend: str,
    device: str,
    intra_op_threads: int,
    options: KindOptions,
) -> LoadedModel:
    """Build the kind and the backend for ``version``, and prove they work with a warm-up."""
    spec = version.spec
    try:
        kind_class = KINDS[task_of(spec)]
        kind = kind_class(version, options)
    except (KeyError, ValueError) as exc:
        raise BackendError(f"metadata does not fit its task: {exc}") from exc
    model = LoadedModel(
        version=version,
        backend=create_backend(
            backend,
            version.artifact(backend),
            device=device,
            input_name=spec.input.name,
            output_name=spec.output.name,
            intra_op_threads=intra_op_threads,
        ),
        kind=kind,
    )
    warm_up(model)
    return model


def warm_up(model: LoadedModel) -> None:
    """Run batches of 1 and 2; outputs must be finite and of the declared width."""
    width = int(model.version.spec.output.shape[-1])
    probe = model.kind.probe()
    for rows in (1, 2):
        batch = np.repeat(probe, rows, axis=0)
        try:
            outputs = model.backend.run(batch)
        except Exception as exc:  # any runtime failure disqualifies the version
            raise BackendError(f"warm-up inference failed: {exc}") from exc
        if outputs.shape != (rows, width):
            raise BackendError(f"warm-up output shape {outputs.shape}, expected {(rows, width)}")
        if not np.all(np.isfinite(outputs)):
            raise BackendError("warm-up output is not finite")
    if model.version.spec.labels and len(model.version.spec.labels) != max(width, 2):
        raise BackendError(f"{len(model.version.spec.labels)} labels for an output of width {width}")
