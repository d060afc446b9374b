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
import time
from pathlib import Path

import torch
from torch import nn

from training import fit
from training.passing.data import PassData, load_pass_csv
from training.passing.model import PassProbability

DEFAULTS = {
    "lbfgs": {"epochs": 5, "lr": 1.0},  # L-BFGS steps of up to 20 iterations each
    "sgd": {"epochs": 1000, "lr": 0.01},
}
L2 = 0.01  # penalty on the standardized weight (lbfgs only)


def fit_lbfgs(data: PassData, epochs: int, lr: float) -> nn.Linear:
    """L2-regularized logistic regression on standardized hours, folded back to raw hours."""
    mean, std = data.hours.mean(), data.hours.std(correction=0)
    z = (data.hours - mean) / std
    layer = nn.Linear(1, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    loss_fn = nn.BCEWithLogitsLoss()
    fit.lbfgs(
        layer,
        lambda: loss_fn(layer(z), data.passed) + 0.5 * L2 * layer.weight.pow(2).sum(),
        steps=epochs,
        lr=lr,
    )
    folded = nn.Linear(1, 1)
    with torch.no_grad():
        folded.weight.copy_(layer.weight / std)
        folded.bias.copy_(layer.bias - layer.weight.squeeze() * mean / std)
    return folded


def fit_sgd(data: PassData, epochs: int, lr: float) -> nn.Linear:
    """The classic recipe: full-batch SGD on raw hours from PyTorch's default init."""
    layer = nn.Linear(1, 1)
    loss_fn = nn.BCEWithLogitsLoss()
    fit.sgd(layer, lambda: loss_fn(layer(data.hours), data.passed), steps=epochs, lr=lr)
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
    from training.passing.release import publish_pass

    data = load_pass_csv(args.data)
    defaults = DEFAULTS[args.optimizer]
    epochs = args.epochs or defaults["epochs"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    fitter = fit_lbfgs if args.optimizer == "lbfgs" else fit_sgd
    layer = fitter(data, epochs, lr)
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
    recipe = {"epochs": epochs, "lr": lr, "l2": L2 if args.optimizer == "lbfgs" else 0.0}
    return publish_pass(args, recipe, data, model, metrics, train_seconds)
