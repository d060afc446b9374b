"""Batch collation, without HTTP or a model."""

import numpy as np
import pytest

from service.collate import collate, split
from service.errors import InferenceFailed, InvalidImage


def prepare(value):
    if value == "bad":
        raise InvalidImage("not an image")
    return np.full((1, 3), float(value), dtype=np.float64)


def test_collate_stacks_rows_in_item_order_as_float32():
    collated = collate([[1], [2, 3], [4]], prepare)
    assert collated.batch.dtype == np.float32
    assert collated.batch[:, 0].tolist() == [1, 2, 3, 4]
    assert collated.slices == [slice(0, 1), slice(1, 3), slice(3, 4)]
    assert collated.errors == [None, None, None]
    assert collated.rows == 4


def test_a_bad_row_fails_only_its_own_item():
    collated = collate([[1], ["bad"], [3]], prepare)
    assert collated.batch[:, 0].tolist() == [1, 3]
    assert collated.slices == [slice(0, 1), None, slice(1, 2)]
    assert isinstance(collated.errors[1], InvalidImage)
    assert collated.errors[1].detail == "not an image"


def test_multi_row_item_error_names_the_row():
    collated = collate([[1, 2, "bad"]], prepare)
    assert collated.batch is None
    assert collated.errors[0].detail == "input 2: not an image"
    assert collated.errors[0].status_code == 400


def test_split_gives_each_item_its_rows_or_error():
    collated = collate([[1, 2], ["bad"], [5]], prepare)
    outputs = np.arange(6, dtype=np.float32).reshape(3, 2)
    results = split(outputs, collated)
    assert results[0].tolist() == [[0, 1], [2, 3]]
    assert isinstance(results[1], InvalidImage)
    assert results[2].tolist() == [[4, 5]]


@pytest.mark.parametrize("rows", [2, 4])
def test_split_refuses_an_output_count_that_does_not_match(rows):
    collated = collate([[1], [2], [3]], prepare)
    with pytest.raises(InferenceFailed, match=f"returned {rows} rows for 3 inputs"):
        split(np.zeros((rows, 2), dtype=np.float32), collated)
