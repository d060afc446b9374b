"""Inference backends: ONNX Runtime (default) and TorchScript (imports torch lazily)."""

from service.models.backends.base import Backend, BackendError
from service.models.backends.factory import create_backend

__all__ = ["Backend", "BackendError", "create_backend"]
