"""The pass-through for uploads that already are a model canvas (MNIST crops)."""

import io

import numpy as np
import pytest
from PIL import Image

from service.imaging.canonical import canonical_canvas
from service.imaging.pipeline import ImageSpec, canvas_from_gray, to_canvas
from tests.conftest import load_mnist_test_set


@pytest.fixture(scope="module")
def mnist_images(mnist_dir):
    images, _ = load_mnist_test_set(mnist_dir)
    return images[:1000]


def full_procedure(pixels: np.ndarray) -> np.ndarray:
    """What the uploads would get without the pass-through."""
    return canvas_from_gray(pixels.astype(np.float32), ImageSpec())


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_mnist_crops_pass_through_unchanged_in_either_polarity(mnist_images):
    hits = 0
    for pixels in mnist_images:
        canvas = canonical_canvas(pixels.astype(np.float32), 28, 28, 20)
        inverted = canonical_canvas(255.0 - pixels.astype(np.float32), 28, 28, 20)
        if canvas is not None:
            hits += 1
            assert canvas.dtype == np.uint8
            assert np.array_equal(canvas, pixels)
            assert np.array_equal(inverted, pixels)
    assert hits >= 0.97 * len(mnist_images)


def test_the_pass_through_agrees_with_the_full_procedure(mnist_images):
    differences = [
        np.abs(full_procedure(pixels).astype(np.float32) - pixels).mean()
        for pixels in mnist_images[:300]
        if canonical_canvas(pixels.astype(np.float32), 28, 28, 20) is not None
    ]
    assert len(differences) >= 290
    assert np.mean(differences) < 0.05  # grey levels, out of 255
    assert np.max(differences) < 2.0


def test_uploads_use_the_pass_through(mnist_images, monkeypatch):
    def must_not_run(gray, spec):
        raise AssertionError("the full procedure ran on a canonical canvas")

    monkeypatch.setattr("service.imaging.pipeline.canvas_from_gray", must_not_run)
    pixels = mnist_images[0]
    assert np.array_equal(to_canvas(png(pixels), ImageSpec(), 25_000_000), pixels)
    assert np.array_equal(to_canvas(png(255 - pixels), ImageSpec(), 25_000_000), pixels)


def shifted(pixels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(np.roll(pixels, dy, axis=0), dx, axis=1)


def test_anything_else_takes_the_full_procedure(mnist_images):
    digit = mnist_images[0].astype(np.float32)
    assert canonical_canvas(digit, 28, 28, 20) is not None
    off_centre = shifted(np.pad(digit, 4)[4:-4, 4:-4], 3, 3)
    assert canonical_canvas(off_centre, 28, 28, 20) is None
    small = np.zeros((28, 28), np.float32)
    small[9:19, 11:17] = 255  # a 10-pixel box
    assert canonical_canvas(small, 28, 28, 20) is None
    noisy = digit.copy()
    noisy[0, 5] = 40  # the border is not clean
    assert canonical_canvas(noisy, 28, 28, 20) is None
    assert canonical_canvas(digit * 0.4, 28, 28, 20) is None  # too faint: needs stretching
    assert canonical_canvas(np.zeros((28, 28), np.float32), 28, 28, 20) is None
    assert canonical_canvas(np.pad(digit, 2), 28, 28, 20) is None  # not the canvas size
