"""The number format of the digit model's training matrix products.

bfloat16 autocast roughly halves the cost of a step on CPUs with native bfloat16
instructions (AVX512-BF16, AMX) and on GPUs that have it; elsewhere it is emulated
and slower than float32, so ``auto`` takes it only where the hardware has it. Only
the forward pass's products run in bfloat16: weights, optimizer state, BatchNorm and
the loss stay float32, and the published model is float32 either way.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from training.errors import UsageError

PRECISIONS = ("auto", "bf16", "fp32")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The first CPU's feature flags from ``/proc/cpuinfo``; empty where there is none."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """Whether ``device`` computes bfloat16 products natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(NATIVE_BF16_FLAGS & (cpu_flags() if flags is None else flags))
    return False


def resolve_precision(
    name: str, device: torch.device, flags: frozenset[str] | None = None
) -> torch.dtype | None:
    """The autocast dtype for ``--precision name``: bfloat16, or None for float32."""
    if name == "fp32":
        return None
    if name == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise UsageError(f"--precision bf16: not supported on {device.type}")
        return torch.bfloat16
    if name == "auto":
        return torch.bfloat16 if native_bf16(device, flags) else None
    raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")


def precision_name(autocast_dtype: torch.dtype | None) -> str:
    return "bf16" if autocast_dtype == torch.bfloat16 else "fp32"


def autocast(
    device: torch.device, autocast_dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``autocast_dtype`` on ``device``; does nothing for None (fp32)."""
    if autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=autocast_dtype)
