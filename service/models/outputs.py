"""What a model's raw output means (``output.kind`` in ``metadata.json``), in numpy.

One implementation: the service turns every batch's outputs into answers with it, and
the training side's parity gate compares backends through the very same function, so
the gate checks what the server will really return.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

OutputKind = Literal["logits", "probabilities", "values"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("logits", "probabilities", "values")


def interpret(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Raw outputs ``[rows, width]`` -> float32 answers of the same shape.

    * ``logits``: a softmax over the columns, or a sigmoid when there is one column;
    * ``probabilities``: used as they are;
    * ``values``: used as they are (regression).
    """
    outputs = np.asarray(outputs).astype(np.float32, copy=False)
    if kind in ("probabilities", "values"):
        return outputs
    if kind != "logits":
        raise ValueError(f"unknown output kind {kind!r}")
    if outputs.shape[-1] == 1:
        return (1.0 / (1.0 + np.exp(-outputs))).astype(np.float32, copy=False)
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
