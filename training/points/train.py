"""``points``: linear regression from hours studied to points, the lectures' example.

x = 1, 2, 3 hours gave y = 2, 4, 6 points; what does 4 h give? The model is
``nn.Linear(1, 1)`` from zero weight and bias, fitted to the mean squared error with
full-batch L-BFGS: the problem is convex and the start is fixed, so every run gives the
same line, in well under a second. The quality gate: the prediction at 4 h must be
8.0 ± 0.05, or nothing is published.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from training import fit
from training.gates import require_within
from training.points.data import PointsData, load_points_csv
from training.points.model import build_model

DEFAULTS = {"epochs": 5, "lr": 1.0}  # L-BFGS steps of up to 20 iterations each
GATE_HOURS = 4.0
GATE_POINTS = 8.0
GATE_TOLERANCE = 0.05


def fit_points(data: PointsData, epochs: int, lr: float) -> nn.Linear:
    """Least squares with full-batch L-BFGS on raw hours."""
    layer = build_model()
    loss_fn = nn.MSELoss()
    fit.lbfgs(layer, lambda: loss_fn(layer(data.hours), data.points), steps=epochs, lr=lr)
    return layer.eval()


def predict(layer: nn.Linear, hours: float) -> float:
    with torch.no_grad():
        return float(layer(torch.tensor([[hours]], dtype=torch.float32)))


def evaluate(layer: nn.Linear, data: PointsData) -> dict[str, object]:
    """Training MSE, the fitted line and the prediction at ``GATE_HOURS``."""
    with torch.no_grad():
        mse = float(nn.functional.mse_loss(layer(data.hours), data.points))
    return {
        "mse": mse,
        "slope": float(layer.weight.item()),
        "intercept": float(layer.bias.item()),
        "prediction_at_hours": {f"{GATE_HOURS:g}": predict(layer, GATE_HOURS)},
    }


def check_quality(prediction: float) -> None:
    """The quality gate: the prediction at 4 h is 8.0 ± 0.05, else ``QualityGateError``."""
    require_within(
        f"points prediction at {GATE_HOURS:g} h", prediction, GATE_POINTS, GATE_TOLERANCE
    )


def main(args: argparse.Namespace) -> Path:
    """Fit the points model to ``args.points_data``, gate it and publish it; return the
    version folder."""
    from training.points.release import publish_points

    data = load_points_csv(args.points_data)
    epochs = args.epochs or DEFAULTS["epochs"]
    lr = args.lr if args.lr is not None else DEFAULTS["lr"]
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    layer = fit_points(data, epochs, lr)
    train_seconds = time.perf_counter() - started
    metrics = evaluate(layer, data)
    prediction = predict(layer, GATE_HOURS)
    print(
        f"points: mse {metrics['mse']:.3g}  slope {metrics['slope']:.4f}  "
        f"intercept {metrics['intercept']:.4f}  {GATE_HOURS:g} h -> {prediction:.4f} points",
        flush=True,
    )
    check_quality(prediction)
    recipe = {"epochs": epochs, "lr": lr, "optimizer": "L-BFGS", "loss": "MSE"}
    return publish_points(args, recipe, data, layer, metrics, train_seconds)
