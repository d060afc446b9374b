"""Batch collation: many requests' prepared rows -> one array, and the outputs back again.

Kept apart from the batcher and from HTTP so that it can be tested on its own (the split
LitServe makes between the API contract and ``batch``/``unbatch``). Each request
("item") brings its rows already prepared (k >= 1 of them); ``stack`` (the model kind's)
joins them into one array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InferenceFailed


@dataclass(frozen=True)
class Collated:
    batch: np.ndarray  # [total_rows, ...] float32
    slices: list[slice]  # per item: its rows in ``batch``


def collate(
    items: Sequence[Sequence[Any]], stack: Callable[[Sequence[Sequence[Any]]], np.ndarray]
) -> Collated:
    """Stack every item's rows into one C-contiguous float32 batch, with ``stack``
    (the model kind's ``ModelKind.stack``)."""
    slices = []
    start = 0
    for rows in items:
        slices.append(slice(start, start + len(rows)))
        start += len(rows)
    batch = stack(items)
    if batch.shape[0] != start:
        raise InferenceFailed(f"{start} rows were prepared, {batch.shape[0]} stacked")
    if batch.dtype != np.float32:
        batch = batch.astype(np.float32)
    return Collated(batch=np.ascontiguousarray(batch), slices=slices)


def split(outputs: np.ndarray, collated: Collated) -> list[np.ndarray]:
    """Give each item its own output rows, in item order.

    The output row count must equal the input row count: a model that returns more or
    fewer rows fails the whole batch rather than hand out someone else's answer.
    """
    rows = collated.batch.shape[0]
    if outputs.ndim < 1 or outputs.shape[0] != rows:
        got = outputs.shape[0] if outputs.ndim else 0
        raise InferenceFailed(f"model returned {got} rows for {rows} inputs")
    return [outputs[part] for part in collated.slices]
