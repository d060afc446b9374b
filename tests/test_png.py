"""``service.imaging.png.grey_png``: valid PNGs that decode to exactly the canvas."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.imaging.png import grey_png


@pytest.mark.parametrize("shape", [(28, 28), (1, 1), (3, 500), (97, 2)])
def test_a_canvas_decodes_back_to_itself(shape):
    canvas = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    image = Image.open(io.BytesIO(grey_png(canvas)))
    image.load()  # checks every chunk's CRC and the zlib stream
    assert image.mode == "L" and image.size == (shape[1], shape[0])
    assert np.array_equal(np.asarray(image), canvas)


def test_a_view_that_is_not_contiguous_is_written_as_its_pixels():
    canvas = np.arange(56 * 28, dtype=np.uint32).reshape(56, 28).astype(np.uint8)[::2]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(grey_png(canvas)))), canvas)


@pytest.mark.parametrize(
    "canvas",
    [np.zeros((28, 28), np.float32), np.zeros((28, 28, 3), np.uint8), np.zeros((0, 5), np.uint8)],
)
def test_anything_but_a_2d_uint8_canvas_is_refused(canvas):
    with pytest.raises(ValueError):
        grey_png(canvas)
