"""Export to TorchScript and ONNX, and the parity gate between them and eager PyTorch."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.errors import ExportError, ParityGateError

ONNX_OPSET = 18
PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 64, 256)  # 1 and 64 required; 256 checks a larger batch


def export_torchscript(model: nn.Module, path: Path) -> None:
    """Script ``model`` (eval mode, CPU) and save it with ``torch.jit.save``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still works
        torch.jit.script(model).save(str(path))


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    input_name: str,
    output_name: str,
    opset: int = ONNX_OPSET,
) -> None:
    """Export to one self-contained ONNX file with a dynamic batch axis."""
    import onnx

    # The exporter is chatty (progress lines on stdout, warnings); keep a training log readable.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        _quiet_loggers("torch.onnx", "onnxscript"),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset,
            external_data=False,
            dynamo=True,
        )
    proto = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(proto)
    external = [
        t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external or [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]:
        raise ExportError(f"{path}: ONNX export wrote external data; it must be one file")


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def as_probabilities(output: torch.Tensor, kind: str) -> torch.Tensor:
    """What the service does with an output of this kind (docs/model-repository.md)."""
    if kind == "probabilities":
        return output
    if kind == "logits":
        return torch.sigmoid(output) if output.shape[1] == 1 else torch.softmax(output, dim=1)
    raise ValueError(f"unknown output kind {kind!r}")


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

    Runs the first ``n`` rows of ``inputs`` for every ``n`` in ``batch_sizes``, compares
    probabilities, and returns the largest absolute difference. Raises
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
            eager = as_probabilities(model(batch), output_kind)
            script = as_probabilities(scripted(batch), output_kind)
        try:
            (raw,) = session.run(None, {input_name: batch.numpy()})
        except Exception as error:
            raise ParityGateError(
                f"parity gate: ONNX Runtime failed at batch {n}: {error}"
            ) from None
        onnx_out = as_probabilities(torch.from_numpy(np.asarray(raw)), output_kind)
        for label, other in (("TorchScript", script), ("ONNX Runtime", onnx_out)):
            if other.shape != eager.shape:
                raise ParityGateError(
                    f"parity gate: {label} output shape {tuple(other.shape)} at batch {n}, "
                    f"eager {tuple(eager.shape)}"
                )
            diff = float((other - eager).abs().max())
            if not diff <= tolerance:  # also catches NaN
                raise ParityGateError(
                    f"parity gate: {label} differs from eager PyTorch by {diff:.3g} "
                    f"(> {tolerance:g}) at batch {n}; nothing published"
                )
            worst = max(worst, diff)
    return worst
