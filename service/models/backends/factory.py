"""Builds the backend a setting names; each backend module is imported only when chosen."""

from __future__ import annotations

from pathlib import Path

from service.models.backends.base import Backend, BackendError


def create_backend(
    kind: str,
    model_path: Path,
    *,
    device: str,
    input_name: str,
    output_name: str,
    intra_op_threads: int,
    model_bytes: bytes | None = None,
) -> Backend:
    """Build the backend ``kind`` (``onnx`` or ``torchscript``) for one model file.

    ``model_bytes``, when given, are the file's verified contents: they are what is
    loaded (``model_path`` then only names the file in errors).
    """
    if kind == "onnx":
        from service.models.backends.onnx_backend import OnnxBackend

        return OnnxBackend(
            model_path,
            device=device,
            input_name=input_name,
            output_name=output_name,
            intra_op_threads=intra_op_threads,
            model_bytes=model_bytes,
        )
    if kind == "torchscript":
        from service.models.backends.torchscript_backend import TorchScriptBackend

        return TorchScriptBackend(
            model_path, device=device, intra_op_threads=intra_op_threads, model_bytes=model_bytes
        )
    raise BackendError(f"unknown backend {kind!r}")
