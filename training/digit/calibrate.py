"""Calibration of the digit model: temperature scaling folded into the last layer.

``fit_temperature`` finds the T that minimises the negative log-likelihood of
``softmax(logits / T)`` on held-out data (the validation split, never the test set);
``fold_temperature`` divides the last ``nn.Linear``'s weight and bias by T, so the
exported model itself outputs calibrated logits and no server code changes.
``expected_calibration_error`` is the usual ECE: confidence (top probability) in equal-width
bins, the bin-size-weighted mean of |accuracy - mean confidence|.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from training.digit.ensemble import members_of

ECE_BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, steps: int = 100) -> float:
    """The temperature T > 0 minimising the NLL of ``softmax(logits / T)`` (L-BFGS on log T)."""
    logits, labels = logits.detach().float().cpu(), labels.detach().cpu()
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of ``model``: it produces the logits."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer to fold a temperature into")
    return linears[-1]


def fold_temperature(model: nn.Module, temperature: float) -> nn.Module:
    """A copy of ``model`` whose logits are the original ones divided by ``temperature``.

    Valid because the last ``nn.Linear`` produces the logits with nothing after it; in
    an ensemble (``MeanLogits``), every member's last layer is divided.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    folded = copy.deepcopy(model)
    with torch.no_grad():
        for member in members_of(folded):  # mean(z_i / T) = mean(z_i) / T
            layer = last_linear(member)
            layer.weight.div_(temperature)
            if layer.bias is not None:
                layer.bias.div_(temperature)
    return folded


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, *, bins: int = ECE_BINS
) -> float:
    """ECE with ``bins`` equal-width confidence bins over (0, 1]."""
    confidence, predicted = probabilities.max(1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0.0, 1.0, bins + 1)
    ece = torch.zeros(())
    for low, high in itertools.pairwise(edges.tolist()):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = (correct[inside].mean() - confidence[inside].mean()).abs()
            ece += inside.float().mean() * gap
    return float(ece)


def reliability_bins(
    probabilities: torch.Tensor, labels: torch.Tensor, *, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per confidence bin: its edges, image count, mean confidence and accuracy."""
    confidence, predicted = probabilities.max(1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in itertools.pairwise(edges.tolist()):
        inside = (confidence > low) & (confidence <= high)
        count = int(inside.sum())
        rows.append(
            {
                "low": float(low),
                "high": float(high),
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else 0.0,
                "accuracy": float(correct[inside].mean()) if count else 0.0,
            }
        )
    return rows
