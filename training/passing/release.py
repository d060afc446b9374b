"""Metadata and plot of a trained pass model, handed to the common release steps."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from training import plots
from training.passing.data import PassData
from training.passing.model import PassProbability
from training.table_release import release_table_model

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

    return release_table_model(
        name="pass",
        task=TASK,
        model=model,
        args=args,
        csv_path=args.data,
        rows=len(data),
        recipe=recipe,
        train_seconds=train_seconds,
        metrics=metrics,
        input_spec=INPUT_SPEC,
        output_spec=OUTPUT_SPEC,
        labels=LABELS,
        parity_inputs=torch.cat([data.hours, grid]),
        write_plots=write_plots,
    )
