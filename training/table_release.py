"""Releasing a model fitted on a small CSV table (``pass``, ``points``): the metadata
and ``Release`` they share, so each model's release module says only what is its own."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training import metadata
from training.export import ONNX_OPSET
from training.release import Release, release


def release_table_model(
    *,
    name: str,
    task: str,
    model: nn.Module,
    args: argparse.Namespace,
    csv_path: Path,
    rows: int,
    recipe: dict[str, Any],
    train_seconds: float,
    metrics: dict[str, Any],
    input_spec: dict[str, Any],
    output_spec: dict[str, Any],
    labels: list[str],
    parity_inputs: torch.Tensor,
    write_plots: Callable[[Path], None],
) -> Path:
    """Gate and publish ``model``, trained on the ``rows`` of ``csv_path`` on the CPU."""
    meta = metadata.base_metadata(
        name=name,
        task=task,
        onnx_opset=ONNX_OPSET,
        training={
            "seed": args.seed,
            "config": {**metadata.config_of(args), **recipe},
            "device": "cpu",
            "epochs_run": recipe["epochs"],
            "train_seconds": round(train_seconds, 3),
        },
        dataset={
            "name": csv_path.name,
            "path": metadata.portable_path(csv_path),
            "train_size": rows,
            "val_size": 0,
            "test_size": 0,
        },
        metrics=metrics,
        input_spec=input_spec,
        output_spec=output_spec,
        labels=labels,
    )
    item = Release(
        name=name,
        model=model,
        input_name=input_spec["name"],
        output_name=output_spec["name"],
        output_kind=output_spec["kind"],
        parity_inputs=parity_inputs,
        metadata=meta,
        write_plots=write_plots,
    )
    return release(item, args.repository, keep=args.keep)
