"""``pass``: logistic regression from hours studied to P(pass).

The model is ``nn.Linear(1, 1)`` trained on logits with ``BCEWithLogitsLoss``; the
published model is the same layer followed by a sigmoid, so it outputs P(pass).

Default recipe (``--optimizer lbfgs``): standardize hours, minimize the mean binary
cross-entropy plus a small L2 penalty on the weight with full-batch L-BFGS, then fold
the standardization back into the layer. The penalty matters: the classic four points
are linearly separable, so without it the weight grows without bound. The problem is
convex, so the result does not depend on the seed. ``--optimizer sgd`` is the classic
recipe: plain SGD on raw hours, lr 0.01, 1000 epochs.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from training import metadata, plots
from training.export import ONNX_OPSET
from training.pass_data import PassData, load_pass_csv
from training.release import Release, release

DEFAULTS = {
    "lbfgs": {"epochs": 5, "lr": 1.0},  # L-BFGS steps of up to 20 iterations each
    "sgd": {"epochs": 1000, "lr": 0.01},
}
L2 = 0.01  # penalty on the standardized weight (lbfgs only)
INPUT_SPEC = {
    "name": "hours",
    "shape": [-1, 1],
    "dtype": "float32",
    "preprocessing": {"kind": "none", "unit": "hours"},
}
OUTPUT_SPEC = {"name": "probability", "shape": [-1, 1], "kind": "probabilities"}
LABELS = ["fail", "pass"]


class PassProbability(nn.Module):
    """The exported model: hours [n, 1] -> P(pass) [n, 1]."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, hours: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(hours))


def fit_lbfgs(data: PassData, epochs: int, lr: float) -> nn.Linear:
    """L2-regularized logistic regression on standardized hours, folded back to raw hours."""
    mean, std = data.hours.mean(), data.hours.std(correction=0)
    z = (data.hours - mean) / std
    layer = nn.Linear(1, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=lr, line_search_fn="strong_wolfe")
    loss_fn = nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(layer(z), data.passed) + 0.5 * L2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    for _ in range(epochs):
        optimizer.step(closure)
    folded = nn.Linear(1, 1)
    with torch.no_grad():
        folded.weight.copy_(layer.weight / std)
        folded.bias.copy_(layer.bias - layer.weight.squeeze() * mean / std)
    return folded


def fit_sgd(data: PassData, epochs: int, lr: float) -> nn.Linear:
    """The classic recipe: full-batch SGD on raw hours from PyTorch's default init."""
    layer = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss_fn(layer(data.hours), data.passed).backward()
        optimizer.step()
    return layer


def decision_boundary(layer: nn.Linear) -> float | None:
    """Hours at which P(pass) = 0.5, or None when the weight is zero."""
    weight, bias = layer.weight.item(), layer.bias.item()
    return None if weight == 0 else -bias / weight


def evaluate(layer: nn.Linear, data: PassData) -> dict[str, float]:
    with torch.no_grad():
        logits = layer(data.hours)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, data.passed)
        accuracy = ((logits > 0).float() == data.passed).float().mean()
    return {"loss": float(loss), "accuracy": float(accuracy)}


def main(args: argparse.Namespace) -> Path:
    """Train the pass model from ``args.data`` and publish it; return the version folder."""
    data = load_pass_csv(args.data)
    defaults = DEFAULTS[args.optimizer]
    epochs = args.epochs or defaults["epochs"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    fit = fit_lbfgs if args.optimizer == "lbfgs" else fit_sgd
    layer = fit(data, epochs, lr)
    train_seconds = time.perf_counter() - started
    model = PassProbability(layer).eval()

    boundary = decision_boundary(layer)
    metrics: dict[str, object] = {**evaluate(layer, data), "decision_boundary_hours": boundary}
    with torch.no_grad():
        probe = model(torch.tensor([[1.0], [7.0]])).squeeze(1).tolist()
    metrics["probability_at_hours"] = {"1": probe[0], "7": probe[1]}
    shown = "none" if boundary is None else f"{boundary:.3f} h"
    print(
        f"pass: loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.3f}  "
        f"boundary {shown}  P(1 h) {probe[0]:.3f}  P(7 h) {probe[1]:.3f}"
    )

    top = max(10.0, math.ceil(float(data.hours.max()) * 1.25))
    grid = torch.linspace(0.0, top, 256).unsqueeze(1)
    with torch.no_grad():
        grid_probability = model(grid).squeeze(1).tolist()

    def write_plots(folder: Path) -> None:
        plots.plot_pass_curve(
            data.hours.squeeze(1).tolist(),
            data.passed.squeeze(1).tolist(),
            grid.squeeze(1).tolist(),
            grid_probability,
            boundary,
            folder / "probability_curve.png",
        )

    config = {
        **metadata.config_of(args),
        "epochs": epochs,
        "lr": lr,
        "l2": L2 if args.optimizer == "lbfgs" else 0.0,
    }
    meta = metadata.base_metadata(
        name="pass",
        onnx_opset=ONNX_OPSET,
        training={
            "seed": args.seed,
            "config": config,
            "device": "cpu",
            "epochs_run": epochs,
            "train_seconds": round(train_seconds, 3),
        },
        dataset={
            "name": args.data.name,
            "path": str(args.data),
            "train_size": len(data),
            "val_size": 0,
            "test_size": 0,
        },
        metrics=metrics,
        input_spec=INPUT_SPEC,
        output_spec=OUTPUT_SPEC,
        labels=LABELS,
    )
    parity_inputs = torch.cat([data.hours, grid])
    item = Release(
        name="pass",
        model=model,
        input_name=INPUT_SPEC["name"],
        output_name=OUTPUT_SPEC["name"],
        output_kind=OUTPUT_SPEC["kind"],
        parity_inputs=parity_inputs,
        metadata=meta,
        write_plots=write_plots,
    )
    return release(item, args.repository, keep=args.keep)
