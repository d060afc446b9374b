"""MLPs for MNIST: normalized image [n, 784] -> logits [n, 10].

The last layer has no activation: its logits go to cross-entropy in training and
the published metadata says the output kind is ``logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

IN_FEATURES = 28 * 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class Arch:
    """Hidden widths, activation, optional BatchNorm and dropout of an MLP."""

    hidden: Sequence[int]
    activation: Callable[[], nn.Module]
    batch_norm: bool = False
    dropout: float = 0.0
    description: str = ""


ARCHS: dict[str, Arch] = {
    "seed": Arch(
        hidden=(200, 200),
        activation=lambda: nn.LeakyReLU(),
        description="classic 784-200-200-10, LeakyReLU",
    ),
    "wide": Arch(
        hidden=(512, 512),
        activation=lambda: nn.ReLU(),
        batch_norm=True,
        dropout=0.1,
        description="784-512-512-10, BatchNorm, ReLU, dropout 0.1",
    ),
    "wider": Arch(
        hidden=(1024, 1024),
        activation=lambda: nn.ReLU(),
        batch_norm=True,
        dropout=0.2,
        description="784-1024-1024-10, BatchNorm, ReLU, dropout 0.2",
    ),
    "deep": Arch(
        hidden=(1024, 1024, 1024),
        activation=lambda: nn.ReLU(),
        batch_norm=True,
        dropout=0.2,
        description="784-1024-1024-1024-10, BatchNorm, ReLU, dropout 0.2",
    ),
}
DEFAULT_ARCH = "wider"


def build_model(arch: str) -> nn.Sequential:
    """A freshly initialized MLP for ``arch`` (a key of ``ARCHS``)."""
    spec = ARCHS[arch]
    layers: list[nn.Module] = []
    width = IN_FEATURES
    for hidden in spec.hidden:
        layers.append(nn.Linear(width, hidden, bias=not spec.batch_norm))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(spec.activation())
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    layers.append(nn.Linear(width, NUM_CLASSES))  # logits: no activation
    return nn.Sequential(*layers)
