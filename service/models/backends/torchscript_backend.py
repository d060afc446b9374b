"""TorchScript backend. torch is imported here only, when this backend is chosen."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from service.models.backends.base import BackendError
from service.models.backends.device import choose_torch_device


class TorchScriptBackend:
    name = "torchscript"

    def __init__(
        self,
        model_path: Path,
        *,
        device: str,
        intra_op_threads: int,
        model_bytes: bytes | None = None,
    ) -> None:
        try:
            import torch
        except ImportError as exc:  # serving installs do not need torch
            raise BackendError(
                "backend=torchscript needs torch: pip install 'digitpass[torch]'"
            ) from exc
        self._torch = torch
        choice = choose_torch_device(
            device, torch.cuda.is_available() if device != "cpu" else False
        )
        if torch.get_num_threads() != intra_op_threads:
            torch.set_num_threads(intra_op_threads)
        self._device = torch.device(choice.device)
        try:
            source = io.BytesIO(model_bytes) if model_bytes is not None else str(model_path)
            self._module = torch.jit.load(source, map_location=self._device).eval()
        except Exception as exc:  # torch raises RuntimeError and friends
            reason = str(exc).replace(str(model_path.parent), "<version folder>")
            raise BackendError(f"{model_path.name}: torch.jit.load failed: {reason}") from exc
        self.device = choice.device
        self.providers: tuple[str, ...] = (f"torch-{choice.device}",)

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self._device)
            output = self._module(tensor)
        return output.float().cpu().numpy()
