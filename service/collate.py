"""Batch collation: many requests' inputs -> one array, and the outputs back again.

Kept apart from the batcher and from HTTP so that it can be tested on its own
(the split LitServe makes between the API contract and ``batch``/``unbatch``).
Each request ("item") carries one or more rows. A row that cannot be prepared
fails only its own item, with that item's error; the other items still run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InferenceFailed, ServiceError

Prepare = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class Collated:
    """The rows of every item that prepared cleanly, and where each item's rows are."""

    batch: np.ndarray | None  # [total_rows, ...] float32, None when no item survived
    slices: list[slice | None]  # per item: its rows in ``batch``, None when it failed
    errors: list[ServiceError | None]  # per item: why it failed, None when it did not

    @property
    def rows(self) -> int:
        return 0 if self.batch is None else int(self.batch.shape[0])


def collate(items: Sequence[Sequence[Any]], prepare: Prepare) -> Collated:
    """Prepare every row of every item and stack them into one float32 batch.

    ``prepare`` maps one raw row (image bytes, a float) to a ``[1, ...]`` array, and
    raises :class:`ServiceError` for bad input. A multi-row item's error names the row.
    """
    arrays: list[np.ndarray] = []
    slices: list[slice | None] = []
    errors: list[ServiceError | None] = []
    start = 0
    for rows in items:
        try:
            prepared = _prepare_rows(rows, prepare)
        except ServiceError as exc:
            slices.append(None)
            errors.append(exc)
            continue
        arrays.extend(prepared)
        stop = start + sum(a.shape[0] for a in prepared)
        slices.append(slice(start, stop))
        errors.append(None)
        start = stop
    batch = np.concatenate(arrays, axis=0) if arrays else None
    if batch is not None and batch.dtype != np.float32:
        batch = batch.astype(np.float32)
    return Collated(batch=batch, slices=slices, errors=errors)


def _prepare_rows(rows: Sequence[Any], prepare: Prepare) -> list[np.ndarray]:
    if len(rows) == 1:
        return [prepare(rows[0])]
    prepared = []
    for index, row in enumerate(rows):
        try:
            prepared.append(prepare(row))
        except ServiceError as exc:
            raise type(exc)(f"input {index}: {exc.detail}") from exc
    return prepared


def split(outputs: np.ndarray, collated: Collated) -> list[np.ndarray | ServiceError]:
    """Give each item its own output rows, or its error, in item order.

    The output row count must equal the input row count: a model that returns more
    or fewer rows fails the whole batch rather than hand out someone else's answer.
    """
    if outputs.ndim < 1 or outputs.shape[0] != collated.rows:
        raise InferenceFailed(
            f"model returned {outputs.shape[0] if outputs.ndim else 0} rows for "
            f"{collated.rows} inputs"
        )
    results: list[np.ndarray | ServiceError] = []
    for rows, error in zip(collated.slices, collated.errors, strict=True):
        results.append(error if rows is None else outputs[rows])  # type: ignore[arg-type]
    return results
