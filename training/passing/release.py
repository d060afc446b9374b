"""Metadata and plot of a trained pass model, handed to the common release steps."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from training import metadata, plots
from training.export import ONNX_OPSET
from training.passing.data import PassData
from training.passing.model import PassProbability
from training.release import Release, release

TASK = "binary-classifier"
INPUT_SPEC = {
    "name": "hours",
    "shape": [-1, 1],
    "dtype": "float32",
    "preprocessing": {"kind": "none", "unit": "hours"},
}
OUTPUT_SPEC = {"name": "probability", "shape": [-1, 1], "kind": "probabilities"}
LABELS = ["fail", "pass"]


def publish_pass(
    args: argparse.Namespace,
    recipe: dict[str, Any],
    data: PassData,
    model: PassProbability,
    metrics: dict[str, Any],
    train_seconds: float,
) -> Path:
    """Build the metadata and plot of a trained pass model and release it."""
    top = max(10.0, math.ceil(float(data.hours.max()) * 1.25))
    grid = torch.linspace(0.0, top, 256).unsqueeze(1)
    with torch.no_grad():
        grid_probability = model(grid).squeeze(1).tolist()
    boundary = metrics["decision_boundary_hours"]

    def write_plots(folder: Path) -> None:
        plots.plot_pass_curve(
            data.hours.squeeze(1).tolist(),
            data.passed.squeeze(1).tolist(),
            grid.squeeze(1).tolist(),
            grid_probability,
            boundary,
            folder / "probability_curve.png",
        )

    meta = metadata.base_metadata(
        name="pass",
        task=TASK,
        onnx_opset=ONNX_OPSET,
        training={
            "seed": args.seed,
            "config": {**metadata.config_of(args), **recipe},
            "device": "cpu",
            "epochs_run": recipe["epochs"],
            "train_seconds": round(train_seconds, 3),
        },
        dataset={
            "name": args.data.name,
            "path": metadata.portable_path(args.data),
            "train_size": len(data),
            "val_size": 0,
            "test_size": 0,
        },
        metrics=metrics,
        input_spec=INPUT_SPEC,
        output_spec=OUTPUT_SPEC,
        labels=LABELS,
    )
    item = Release(
        name="pass",
        model=model,
        input_name=INPUT_SPEC["name"],
        output_name=OUTPUT_SPEC["name"],
        output_kind=OUTPUT_SPEC["kind"],
        parity_inputs=torch.cat([data.hours, grid]),
        metadata=meta,
        write_plots=write_plots,
    )
    return release(item, args.repository, keep=args.keep)
