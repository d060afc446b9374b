"""MLPs for MNIST: normalized image [n, 784] -> logits [n, 10].

The last layer has no activation: its logits go to cross-entropy in training and
the published metadata says the output kind is ``logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from training.digit.data.mnist import MEAN, STD
from training.digit.deskew import Deskew

IN_FEATURES = 28 * 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class Arch:
    """Hidden widths, activation, optional BatchNorm and dropout of an MLP."""

    hidden: Sequence[int]
    activation: Callable[[], nn.Module]
    batch_norm: bool = False
    dropout: float = 0.0
    deskew: bool = False
    description: str = ""


def batch_norm_relu(hidden: Sequence[int], dropout: float, *, deskew: bool = False) -> Arch:
    """Linear (no bias), BatchNorm, ReLU and dropout per hidden layer, described by its
    widths (``784-640-640-10, BatchNorm, ReLU, dropout 0.2``)."""
    widths = "-".join(str(width) for width in (IN_FEATURES, *hidden, NUM_CLASSES))
    return Arch(
        hidden=tuple(hidden),
        activation=lambda: nn.ReLU(),
        batch_norm=True,
        dropout=dropout,
        deskew=deskew,
        description=("deskewed, then " if deskew else "")
        + f"{widths}, BatchNorm, ReLU, dropout {dropout:g}",
    )


ARCHS: dict[str, Arch] = {
    "seed": Arch(
        hidden=(200, 200),
        activation=lambda: nn.LeakyReLU(),
        description="classic 784-200-200-10, LeakyReLU",
    ),
    "wide": batch_norm_relu((512, 512), 0.1),
    "slim": batch_norm_relu((640, 640), 0.2),
    "mid": batch_norm_relu((768, 768), 0.2),
    "wider": batch_norm_relu((1024, 1024), 0.2),
    "deep": batch_norm_relu((1024, 1024, 1024), 0.2),
    "wider-deskew": batch_norm_relu((1024, 1024), 0.2, deskew=True),
}
# one per member, cycling
DEFAULT_ARCHS: tuple[str, ...] = ("slim",)


def parse_archs(text: str) -> tuple[str, ...]:
    """``"wider,wider-deskew"`` -> ``("wider", "wider-deskew")``; unknown names raise."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in ARCHS]
    if unknown:
        what = ", ".join(unknown) if any(unknown) else repr(text)
        raise ValueError(f"unknown arch {what}; known: {', '.join(ARCHS)}")
    return names


def member_archs(archs: Sequence[str], members: int) -> list[str]:
    """Member ``i``'s arch: the ``i``-th of ``archs``, cycling when there are fewer."""
    return [archs[index % len(archs)] for index in range(members)]


def describe_archs(archs: Sequence[str]) -> str:
    """One description when every member shares an arch, else each member's in turn."""
    unique = list(dict.fromkeys(archs))
    if len(unique) == 1:
        return ARCHS[unique[0]].description
    return " + ".join(f"({ARCHS[name].description})" for name in archs)


def build_model(arch: str) -> nn.Sequential:
    """A freshly initialized MLP for ``arch`` (a key of ``ARCHS``)."""
    spec = ARCHS[arch]
    layers: list[nn.Module] = [Deskew(MEAN, STD)] if spec.deskew else []
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
