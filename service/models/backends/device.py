"""Which device and execution providers to use.

The only boundary with the hardware is :func:`nvidia_gpu_count`, which asks the
CUDA driver directly. Everything else is a pure function of its inputs, so GPU
selection is unit-tested by faking that one number and the providers list.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


class DeviceUnavailable(RuntimeError):
    """``device=cuda`` was asked for but no usable GPU is present."""


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda" or "cpu"
    providers: tuple[str, ...]  # ONNX Runtime providers, in priority order
    reason: str


def nvidia_gpu_count() -> int:
    """GPUs the CUDA driver can see; 0 when there is no driver or no device.

    Asking the driver first means a CPU-only host never asks ONNX Runtime or torch
    for CUDA, so they log nothing alarming about missing libraries.
    """
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    try:
        if libcuda.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except (AttributeError, OSError):
        return 0


def choose_onnx_device(
    requested: str, available_providers: Sequence[str], gpu_count: int
) -> DeviceChoice:
    """Pick ONNX Runtime providers for ``requested`` in ``auto``, ``cpu`` or ``cuda``."""
    cuda_built = CUDA_PROVIDER in available_providers
    if requested == "cpu":
        return DeviceChoice("cpu", (CPU_PROVIDER,), "device=cpu requested")
    if cuda_built and gpu_count > 0:
        return DeviceChoice("cuda", (CUDA_PROVIDER, CPU_PROVIDER), f"{gpu_count} GPU(s) visible")
    why = "no GPU visible to the CUDA driver" if cuda_built else "onnxruntime has no CUDA provider"
    if requested == "cuda":
        raise DeviceUnavailable(f"device=cuda requested but {why}")
    return DeviceChoice("cpu", (CPU_PROVIDER,), why)


def choose_torch_device(requested: str, cuda_available: bool) -> DeviceChoice:
    """Pick the torch device for ``requested``; ``cuda_available`` is torch's own answer."""
    if requested == "cpu":
        return DeviceChoice("cpu", (), "device=cpu requested")
    if cuda_available:
        return DeviceChoice("cuda", (), "torch.cuda.is_available()")
    if requested == "cuda":
        raise DeviceUnavailable("device=cuda requested but torch sees no usable GPU")
    return DeviceChoice("cpu", (), "torch sees no usable GPU")
