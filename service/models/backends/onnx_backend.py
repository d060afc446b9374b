"""ONNX Runtime backend: the CUDA provider when a GPU is usable, the CPU otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models.backends.base import BackendError
from service.models.backends.device import CUDA_PROVIDER, choose_onnx_device, nvidia_gpu_count


class OnnxBackend:
    name = "onnx"

    def __init__(
        self,
        model_path: Path,
        *,
        device: str,
        input_name: str,
        output_name: str,
        intra_op_threads: int,
        model_bytes: bytes | None = None,
    ) -> None:
        available = ort.get_available_providers()
        # Only ask the driver when the CUDA provider exists and the CPU was not forced.
        gpus = nvidia_gpu_count() if device != "cpu" and CUDA_PROVIDER in available else 0
        choice = choose_onnx_device(device, available, gpus)
        if choice.device == "cuda":
            _preload_cuda_libraries()
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # Spinning pool threads burn the cores the event loop needs between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                model_bytes if model_bytes is not None else str(model_path),
                sess_options=options,
                providers=list(choice.providers),
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            reason = str(exc).replace(str(model_path.parent), "<version folder>")
            raise BackendError(f"{model_path.name}: ONNX Runtime could not load it: {reason}") from exc
        self.providers = tuple(self._session.get_providers())
        # ONNX Runtime silently falls back to the CPU when CUDA libraries are missing.
        self.device = "cuda" if CUDA_PROVIDER in self.providers else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise BackendError(
                f"{model_path.name}: device=cuda requested but ONNX Runtime could not start its "
                "CUDA provider (are the CUDA 13 and cuDNN 9 libraries installed? "
                "pip install 'digitpass[cuda]')"
            )
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if input_name not in inputs or output_name not in outputs:
            raise BackendError(
                f"{model_path.name}: expects input {input_name!r} and output {output_name!r}, "
                f"file has {sorted(inputs)} -> {sorted(outputs)}"
            )
        self._input_name = input_name
        self._output_names = [output_name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        (output,) = self._session.run(self._output_names, {self._input_name: batch})
        return np.asarray(output, dtype=np.float32)


def _preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from the ``nvidia-*`` pip packages when they are installed.

    Without this, ONNX Runtime only finds them on ``LD_LIBRARY_PATH``. Called only when
    a GPU is visible, so CPU-only hosts never log a missing-library warning.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload(directory="")
        except Exception:  # best effort: the session reports what it really got
            return
