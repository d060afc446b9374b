"""Calibration of the digit model: temperature scaling folded into the last layer.

``fit_temperature`` finds the T that minimises the negative log-likelihood of
``softmax(logits / T)`` (a bounded 1-D search) on held-out data (the validation
split, never the test set);
``fold_temperature`` divides the last ``nn.Linear``'s weight and bias by T, so the
exported model itself outputs calibrated logits and no server code changes.
``expected_calibration_error`` is the usual ECE: confidence (top probability) in equal-width
bins, the bin-size-weighted mean of |accuracy - mean confidence|.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn

from training.digit.ensemble import members_of

ECE_BINS = 15


TEMPERATURE_RANGE = (0.05, 20.0)  # the temperatures the fit looks among
FIT_STEPS = 80  # golden-section steps: the bracket shrinks by 0.618 each


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, steps: int = FIT_STEPS) -> float:
    """The temperature T in ``TEMPERATURE_RANGE`` minimising the NLL of
    ``softmax(logits / T)``.

    The NLL is convex in 1/T (a log-sum-exp of linear functions of it, less a linear
    one), so a golden-section search over 1/T finds its minimum in the range however
    flat it is there: a gradient method stops at once where the NLL is flat at its
    start (T = 1), wherever the minimum is. Where the minimum lies outside the
    range, the nearer end is returned."""
    logits = logits.detach().double().cpu()
    labels = labels.detach().cpu()

    def nll(inverse: float) -> float:
        return float(nn.functional.cross_entropy(logits * inverse, labels))

    low, high = 1.0 / TEMPERATURE_RANGE[1], 1.0 / TEMPERATURE_RANGE[0]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    nll_left, nll_right = nll(left), nll(right)
    for _ in range(steps):
        if nll_left <= nll_right:  # the minimum is left of ``right``
            high, right, nll_right = right, left, nll_left
            left = high - ratio * (high - low)
            nll_left = nll(left)
        else:
            low, left, nll_left = left, right, nll_right
            right = low + ratio * (high - low)
            nll_right = nll(right)
    return 1.0 / (0.5 * (low + high))


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
