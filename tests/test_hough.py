"""``service.imaging.hough``: the strongest straight step edges of an image, each once."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from service.imaging.hough import edge_pixels, strongest_lines


def _sheet(height: int = 384, width: int = 512) -> np.ndarray:
    """A light sheet (rows 40-344, columns 60-452) on a dark table, slightly blurred."""
    image = np.full((height, width), 68, np.uint8)
    image[40:344, 60:452] = 200
    blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(1.0))
    rng = np.random.default_rng(0)
    return np.asarray(blurred, np.float32) + rng.normal(0.0, 2.0, (height, width))


def test_a_sheets_four_sides_are_found_once_each() -> None:
    pixels = edge_pixels(_sheet())
    assert pixels is not None
    lines = strongest_lines(pixels, 50.0, 16)
    assert len(lines) == 4  # one per side, not a plateau of copies
    sides = sorted((round(np.degrees(line.theta)) % 360, round(abs(line.rho))) for line in lines)
    # normals towards the paper: down from the top side (90), left from the right (180),
    # up from the bottom (270), right from the left (0); distances are the sides'
    expected = [(0, 60), (90, 40), (180, 452), (270, 344)]
    for (angle, rho), (want_angle, want_rho) in zip(sides, expected, strict=True):
        assert abs(angle - want_angle) <= 1 and abs(rho - want_rho) <= 2, sides
