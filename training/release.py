"""The steps every model goes through after training and its quality gate: export,
parity gate, plots, publish."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training import export, gates, publish


@dataclass
class Release:
    """A trained model ready to be published as ``<repository>/<name>/<version>``.

    ``model`` is what gets exported: it takes the tensor described by ``input_name``
    and returns ``output_name`` of kind ``output_kind``. ``parity_inputs`` are real
    inputs (at least ``max(gates.PARITY_BATCH_SIZES)`` rows). ``metadata`` is
    ``metadata.base_metadata(...)``.
    """

    name: str
    model: nn.Module
    input_name: str
    output_name: str
    output_kind: str
    parity_inputs: torch.Tensor
    metadata: dict[str, Any]
    write_plots: Callable[[Path], None] = field(default=lambda folder: None)


def release(item: Release, repository: Path, keep: int | None = None) -> Path:
    """Export, check parity from the files on disk, publish; return the version folder.

    The parity gate compares the answers ``service.models.outputs.interpret`` makes of
    each backend's outputs. On any failure the staging folder is removed and nothing is
    published.
    """
    model = copy.deepcopy(item.model).cpu().eval()
    inputs = item.parity_inputs.detach().cpu().float()
    with publish.staging(repository, item.name) as stage:
        export.export_torchscript(model, stage / "model.pt")
        export.export_onnx(
            model,
            inputs[:2],
            stage / "model.onnx",
            input_name=item.input_name,
            output_name=item.output_name,
        )
        worst = gates.check_parity(
            model,
            stage / "model.pt",
            stage / "model.onnx",
            inputs,
            input_name=item.input_name,
            output_kind=item.output_kind,
        )
        print(
            f"{item.name}: parity gate passed "
            f"(max abs diff {worst:.2e} on answers of kind {item.output_kind})"
        )
        item.write_plots(stage)
        metadata = {
            **item.metadata,
            "parity": {
                "max_abs_diff": worst,
                "tolerance": gates.PARITY_TOLERANCE,
                "batch_sizes": list(gates.PARITY_BATCH_SIZES),
            },
        }
        folder = publish.commit(stage, metadata, keep=keep)
    print(f"{item.name}: published {folder}", flush=True)
    return folder
