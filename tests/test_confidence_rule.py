"""The uncertainty rule of digit replies: the confidence threshold, and solid shapes."""

from __future__ import annotations

import numpy as np
import pytest

from service.imaging.confidence import (
    SOLID_ABOVE,
    UNCERTAIN_BELOW,
    solid_fractions,
    uncertain_flags,
)

ROWS, COLS = np.mgrid[:28, :28]
RADIUS = np.hypot(ROWS - 13.5, COLS - 13.5)
DISC = RADIUS <= 9
RING = (RADIUS <= 9) & (RADIUS >= 6.5)


def canvases(*masks: np.ndarray) -> np.ndarray:
    return np.stack([np.where(mask, 255, 0).astype(np.uint8) for mask in masks])


def test_a_filled_disc_is_solid_and_a_ring_is_not():
    disc, ring = solid_fractions(canvases(DISC, RING))
    assert disc >= 0.5
    assert ring < 0.1
    assert uncertain_flags(np.array([1.0, 1.0]), canvases(DISC, RING)).tolist() == [True, False]


@pytest.mark.parametrize(("width", "most"), [(2, 0.0), (3, 0.0), (5, 0.2), (7, 0.4)])
def test_pen_strokes_are_not_solid(width, most):
    """A vertical bar 20 px tall: a 5x5 erosion keeps width - 4 of its columns."""
    bar = (abs(COLS - 13.5) < width / 2) & (ROWS >= 4) & (ROWS < 24)
    assert solid_fractions(canvases(bar))[0] <= most
    assert not uncertain_flags(np.array([UNCERTAIN_BELOW]), canvases(bar))[0]


def test_the_thickest_canvas_strokes_stay_under_the_bar():
    """A '0' drawn with a 6 px pen (the preprocessing thins thicker ones first)."""
    zero = abs(np.hypot((ROWS - 13.5) / 1.3, COLS - 13.5) - 5.5) <= 3.0
    assert solid_fractions(canvases(zero))[0] < SOLID_ABOVE


def test_empty_and_faint_canvases_are_not_solid():
    blank = np.zeros((28, 28), bool)
    faint = np.full((1, 28, 28), 100, np.uint8)  # all under the ink level
    assert solid_fractions(canvases(blank)).tolist() == [0.0]
    assert solid_fractions(faint).tolist() == [0.0]


def test_the_batch_agrees_with_a_plain_erosion_image_by_image():
    """Each image's 5x5 erosion written out as the 25 shifted windows it takes."""
    rng = np.random.default_rng(0)
    masks = [DISC, RING, np.ones((28, 28), bool)]
    masks += [rng.random((28, 28)) < density for density in (0.5, 0.7, 0.9, 0.97)]
    batch = solid_fractions(canvases(*masks))
    for mask, share in zip(masks, batch, strict=True):
        padded = np.pad(mask, 2)  # outside the canvas is not ink
        windows = [padded[dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
        inside = np.logical_and.reduce(windows)
        assert share == pytest.approx(inside.sum() / mask.sum())


def test_low_confidence_is_uncertain_whatever_the_shape():
    flags = uncertain_flags(
        np.array([UNCERTAIN_BELOW - 1e-6, UNCERTAIN_BELOW]), canvases(RING, RING)
    )
    assert flags.tolist() == [True, False]
