"""Triton's classification extension: an output's top-k classes instead of its values.

Requesting an output with ``classification: k`` returns, per row, the k best classes as
BYTES strings ``"<score>:<index>:<label>"`` (``"<score>:<index>"`` without labels),
highest score first: shape ``[rows, k]``, as Triton returns them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_classes(scores: np.ndarray, labels: Sequence[str], count: int) -> list[bytes]:
    """``scores [rows, classes]`` -> ``rows * min(count, classes)`` strings, row-major."""
    count = min(count, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    picked = np.take_along_axis(scores, order, axis=1)
    out = []
    for row_scores, row_order in zip(picked.tolist(), order.tolist(), strict=True):
        for score, index in zip(row_scores, row_order, strict=True):
            label = f":{labels[index]}" if index < len(labels) else ""
            out.append(f"{score:f}:{index}{label}".encode())
    return out
