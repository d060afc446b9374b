"""The exported pass model: logistic regression, hours [n, 1] -> P(pass) [n, 1]."""

from __future__ import annotations

import torch
from torch import nn


class PassProbability(nn.Module):
    """The exported model: hours [n, 1] -> P(pass) [n, 1]."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, hours: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(hours))
