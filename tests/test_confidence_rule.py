"""The uncertainty rule of digit replies: the confidence threshold, and solid shapes."""

from __future__ import annotations

import numpy as np
import pytest

from service.imaging.confidence import (
    SOLID_ABOVE,
    UNCERTAIN_BELOW,
    is_uncertain,
    solid_fraction,
)

ROWS, COLS = np.mgrid[:28, :28]
RADIUS = np.hypot(ROWS - 13.5, COLS - 13.5)


def canvas(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def test_a_filled_disc_is_solid_and_a_ring_is_not():
    disc = canvas(RADIUS <= 9)
    ring = canvas((RADIUS <= 9) & (RADIUS >= 6.5))
    assert solid_fraction(disc) >= 0.5
    assert solid_fraction(ring) < 0.1
    assert is_uncertain(1.0, disc) and not is_uncertain(1.0, ring)


@pytest.mark.parametrize(("width", "most"), [(2, 0.0), (3, 0.0), (5, 0.2), (7, 0.4)])
def test_pen_strokes_are_not_solid(width, most):
    """A vertical bar 20 px tall: a 5x5 erosion keeps width - 4 of its columns."""
    bar = canvas((abs(COLS - 13.5) < width / 2) & (ROWS >= 4) & (ROWS < 24))
    assert solid_fraction(bar) <= most
    assert not is_uncertain(UNCERTAIN_BELOW, bar)


def test_the_thickest_canvas_strokes_stay_under_the_bar():
    """A '0' drawn with a 6 px pen (the preprocessing thins thicker ones first)."""
    zero = canvas(abs(np.hypot((ROWS - 13.5) / 1.3, COLS - 13.5) - 5.5) <= 3.0)
    assert solid_fraction(zero) < SOLID_ABOVE


def test_empty_and_faint_canvases_are_not_solid():
    assert solid_fraction(np.zeros((28, 28), np.uint8)) == 0.0
    faint = np.full((28, 28), 100, np.uint8)  # all under the ink level
    assert solid_fraction(faint) == 0.0


def test_low_confidence_is_uncertain_whatever_the_shape():
    ring = canvas((RADIUS <= 9) & (RADIUS >= 6.5))
    assert is_uncertain(UNCERTAIN_BELOW - 1e-6, ring)
    assert not is_uncertain(UNCERTAIN_BELOW, ring)
