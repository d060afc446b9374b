"""Metadata and plot of a trained points model, handed to the common release steps."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training import plots
from training.points.data import PointsData
from training.points.train import GATE_HOURS
from training.table_release import release_table_model

TASK = "scalar-regressor"
INPUT_SPEC = {
    "name": "hours",
    "shape": [-1, 1],
    "dtype": "float32",
    "preprocessing": {"kind": "none", "unit": "hours"},
}
OUTPUT_SPEC = {"name": "points", "shape": [-1, 1], "kind": "values", "unit": "points"}
LABELS: list[str] = []  # a regressor has no classes


def publish_points(
    args: argparse.Namespace,
    recipe: dict[str, Any],
    data: PointsData,
    layer: nn.Linear,
    metrics: dict[str, Any],
    train_seconds: float,
) -> Path:
    """Build the metadata and plot of a gated points model and release it."""
    top = max(10.0, math.ceil(max(float(data.hours.max()), GATE_HOURS) * 1.25))
    grid = torch.linspace(0.0, top, 256).unsqueeze(1)
    with torch.no_grad():
        grid_points = layer(grid).squeeze(1).tolist()
    prediction = metrics["prediction_at_hours"][f"{GATE_HOURS:g}"]

    def write_plots(folder: Path) -> None:
        plots.plot_fit_line(
            data.hours.squeeze(1).tolist(),
            data.points.squeeze(1).tolist(),
            grid.squeeze(1).tolist(),
            grid_points,
            (GATE_HOURS, prediction),
            folder / "fit_line.png",
        )

    return release_table_model(
        name="points",
        task=TASK,
        model=layer,
        args=args,
        csv_path=args.points_data,
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
