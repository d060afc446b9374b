"""Export to TorchScript and ONNX (one self-contained file each); the parity gate between
them and eager PyTorch is in ``training.gates``."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from training.errors import ExportError

ONNX_OPSET = 18


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
