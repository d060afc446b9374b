"""The two gates every version passes before it is published.

* The parity gate: eager PyTorch, TorchScript and ONNX Runtime (both loaded back from
  the files on disk) give the same answers on real inputs. Raw outputs are turned into
  answers by ``service.models.outputs.interpret``, the very function the service
  answers with, so the gate checks what the server will return.
* The quality gate: a model's own metric reaches what it must
  (:func:`require_at_least`, :func:`require_within`).

A failed gate raises ``ParityGateError`` or ``QualityGateError``; ``release`` then
publishes nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from service.models.outputs import interpret
from training.errors import ParityGateError, QualityGateError

PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 64, 256)  # 1 and 64 required; 256 checks a larger batch


def _answers(output: torch.Tensor | np.ndarray, kind: str) -> np.ndarray:
    """A backend's raw output (a torch tensor or a numpy array) as the service's answers."""
    if isinstance(output, torch.Tensor):
        output = output.detach().cpu().numpy()
    return interpret(np.asarray(output), kind)


def check_parity(
    model: nn.Module,
    torchscript_path: Path,
    onnx_path: Path,
    inputs: torch.Tensor,
    *,
    input_name: str,
    output_kind: str,
    batch_sizes: Sequence[int] = PARITY_BATCH_SIZES,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Compare eager, TorchScript from disk and ONNX Runtime from disk on real ``inputs``.

    Runs the first ``n`` rows of ``inputs`` for every ``n`` in ``batch_sizes``, turns
    each backend's outputs into answers with ``interpret(outputs, output_kind)``,
    compares them, and returns the largest absolute difference. Raises
    ``ParityGateError`` when it is above ``tolerance`` or a backend fails.
    """
    import onnxruntime as ort

    if inputs.shape[0] < max(batch_sizes):
        raise ValueError(f"need at least {max(batch_sizes)} inputs, got {inputs.shape[0]}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(torchscript_path), map_location="cpu")
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as error:  # a file that does not load back fails the gate
        raise ParityGateError(f"parity gate: cannot load the exported model: {error}") from None
    model = model.eval()
    worst = 0.0
    for n in batch_sizes:
        batch = inputs[:n].detach().cpu().float().contiguous()
        with torch.no_grad():
            eager = _answers(model(batch), output_kind)
            script = _answers(scripted(batch), output_kind)
        try:
            (raw,) = session.run(None, {input_name: batch.numpy()})
        except Exception as error:
            raise ParityGateError(
                f"parity gate: ONNX Runtime failed at batch {n}: {error}"
            ) from None
        onnx_out = _answers(raw, output_kind)
        for label, other in (("TorchScript", script), ("ONNX Runtime", onnx_out)):
            if other.shape != eager.shape:
                raise ParityGateError(
                    f"parity gate: {label} output shape {tuple(other.shape)} at batch {n}, "
                    f"eager {tuple(eager.shape)}"
                )
            diff = float(np.abs(other - eager).max()) if eager.size else 0.0
            if not diff <= tolerance:  # also catches NaN
                raise ParityGateError(
                    f"parity gate: {label} differs from eager PyTorch by {diff:.3g} "
                    f"(> {tolerance:g}) at batch {n}; nothing published"
                )
            worst = max(worst, diff)
    return worst


def require_at_least(what: str, value: float, minimum: float, option: str) -> None:
    """Quality gate: ``value`` must reach ``minimum`` (the value of ``option``)."""
    if not value >= minimum:  # also refuses NaN
        raise QualityGateError(
            f"quality gate: {what} {value:.4f} is below {option} {minimum:.4f}; nothing published"
        )


def require_within(what: str, value: float, expected: float, tolerance: float) -> None:
    """Quality gate: ``value`` must be ``expected`` ± ``tolerance``."""
    if not abs(value - expected) <= tolerance:  # also refuses NaN
        raise QualityGateError(
            f"quality gate: {what} {value:.4f} is not {expected:g} ± {tolerance:g}; "
            "nothing published"
        )
