"""What a kind takes and gives as tensors (the Open Inference Protocol's view of it).

Each kind declares its input and output tensors (name, datatype, shape with -1 for a
variable dimension), and turns validated input tensors into rows for the batcher. The
protocol layer (``service.protocol``) checks requests against these declarations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorDecl:
    name: str
    datatype: str  # a protocol datatype: FP32, BYTES, ...
    shape: tuple[int, ...]  # -1: any size
    alternative_shapes: tuple[tuple[int, ...], ...] = ()  # also accepted, e.g. [-1, 1, 28, 28]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # shown in the metadata

    def accepts_shape(self, shape: Sequence[int]) -> bool:
        return any(
            len(shape) == len(declared) and all(d in (-1, s) for d, s in zip(declared, shape))
            for declared in (self.shape, *self.alternative_shapes)
        )


@dataclass(frozen=True)
class TensorRows:
    """Rows for the runtime: already the model's input (``prepared``), or raw rows that
    go through the kind's ``prepare`` as the friendly routes' do."""

    rows: Sequence[Any]
    prepared: bool
