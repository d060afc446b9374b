"""Batch collation, without HTTP or a model: prepared rows in, each item's outputs out."""

import numpy as np
import pytest

from service.errors import InferenceFailed
from service.serving.collate import collate, split


def stack(items):
    """ModelKind.stack's default: the items' rows, in order."""
    return np.concatenate(items, axis=0) if len(items) > 1 else np.asarray(items[0])


def rows(*values):
    return np.asarray(values, dtype=np.float64).reshape(len(values), 1).repeat(3, axis=1)


def test_collate_stacks_rows_in_item_order_as_float32():
    collated = collate([rows(1), rows(2, 3), rows(4)], stack)
    assert collated.batch.dtype == np.float32
    assert collated.batch.flags.c_contiguous
    assert collated.batch[:, 0].tolist() == [1, 2, 3, 4]
    assert collated.slices == [slice(0, 1), slice(1, 3), slice(3, 4)]


def test_one_item_is_used_as_it_is():
    item = rows(5, 6).astype(np.float32)
    assert collate([item], stack).batch is item


def test_split_gives_each_item_its_own_rows():
    collated = collate([rows(1, 2), rows(3), rows(5)], stack)
    outputs = np.arange(8, dtype=np.float32).reshape(4, 2)
    results = split(outputs, collated)
    assert [r.tolist() for r in results] == [[[0, 1], [2, 3]], [[4, 5]], [[6, 7]]]


@pytest.mark.parametrize("count", [2, 4])
def test_split_refuses_an_output_count_that_does_not_match(count):
    collated = collate([rows(1), rows(2), rows(3)], stack)
    with pytest.raises(InferenceFailed, match=f"returned {count} rows for 3 inputs"):
        split(np.zeros((count, 2), dtype=np.float32), collated)
