"""A loaded, warmed-up model version: its backend, its kind, and what its outputs mean."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from service.models.backends import Backend, BackendError, create_backend
from service.models.kinds import KINDS, KindOptions, ModelKind
from service.models.metadata import task_of
from service.models.onnx_files import MalformedOnnx, external_data_files
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
    model_bytes: bytes | None = version.artifact_bytes(backend)
    if backend == "onnx":
        assert model_bytes is not None
        try:
            external = external_data_files(model_bytes)
        except MalformedOnnx as exc:
            raise BackendError(f"model.onnx is not a valid ONNX file: {exc}") from None
        version.check_loads_only_listed(external)
        if external:
            model_bytes = None  # ONNX Runtime opens the (verified) data files beside it
    model = LoadedModel(
        version=version,
        backend=create_backend(
            backend,
            version.artifact(backend),
            device=device,
            input_name=spec.input.name,
            output_name=spec.output.name,
            intra_op_threads=intra_op_threads,
            model_bytes=model_bytes,
        ),
        kind=kind,
    )
    warm_up(model)
    return model


def warm_up(model: LoadedModel) -> None:
    """Run batches of 1 and 2 and check the metadata against what really happens.

    * the probe (for image kinds: a synthetic image through the version's own
      preprocessing) has the declared input shape;
    * the outputs are finite, of the declared width, and fit the declared output kind
      (``probabilities`` in [0, 1], summing to 1 over several columns);
    * there are as many labels as output columns (2 for one column).
    """
    spec = model.version.spec
    width = int(spec.output.shape[-1])
    probe = model.kind.probe()
    declared = tuple(spec.input.shape[1:])
    if tuple(probe.shape[1:]) != declared:
        raise BackendError(
            f"preprocessing produces rows of shape {tuple(probe.shape[1:])}, "
            f"metadata declares {declared}"
        )
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
        if spec.output.kind == "probabilities":
            if np.any(outputs < -1e-4) or np.any(outputs > 1 + 1e-4):
                raise BackendError("output kind is probabilities, but the model gives values "
                                   "outside [0, 1]")
            if width > 1 and not np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
                raise BackendError("output kind is probabilities, but a row does not sum to 1")
    if spec.labels and len(spec.labels) != max(width, 2):
        raise BackendError(f"{len(spec.labels)} labels for an output of width {width}")
