"""Full-batch fitting loops shared by the small models (``pass``, ``points``).

Both take a ``loss`` closure over the whole data set, so each model says only what it
minimizes. On the same inputs they do the same arithmetic every run: deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def lbfgs(module: nn.Module, loss: Callable[[], torch.Tensor], *, steps: int, lr: float) -> float:
    """``steps`` L-BFGS steps (up to 20 iterations each, strong-Wolfe line search) on
    ``loss()``; returns the final loss."""
    optimizer = torch.optim.LBFGS(module.parameters(), lr=lr, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    for _ in range(steps):
        optimizer.step(closure)
    with torch.no_grad():
        return float(loss())


def sgd(module: nn.Module, loss: Callable[[], torch.Tensor], *, steps: int, lr: float) -> float:
    """``steps`` full-batch plain SGD steps on ``loss()``; returns the final loss."""
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        return float(loss())
