"""The backend interface and its factory."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class BackendError(RuntimeError):
    """A model file could not be loaded or run."""


class Backend(Protocol):
    """Runs a float32 batch ``[N, ...]`` through a model and returns ``[N, K]`` float32."""

    name: str
    device: str
    providers: tuple[str, ...]

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def create_backend(
    kind: str,
    model_path: Path,
    *,
    device: str,
    input_name: str,
    output_name: str,
    intra_op_threads: int,
) -> Backend:
    """Build the backend ``kind`` (``onnx`` or ``torchscript``) for one model file."""
    if kind == "onnx":
        from service.models.backends.onnx_backend import OnnxBackend

        return OnnxBackend(
            model_path,
            device=device,
            input_name=input_name,
            output_name=output_name,
            intra_op_threads=intra_op_threads,
        )
    if kind == "torchscript":
        from service.models.backends.torchscript_backend import TorchScriptBackend

        return TorchScriptBackend(model_path, device=device, intra_op_threads=intra_op_threads)
    raise BackendError(f"unknown backend {kind!r}")
