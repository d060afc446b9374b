"""A sheet found by its straight sides, with a hard shadow across sheet and table."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from service.imaging.sides import crop_to_sides, find_sides

CORNERS = [(62, 48), (330, 70), (318, 262), (50, 240)]  # (x, y), clockwise


def _scene(shadow: bool) -> np.ndarray:
    """A tilted sheet (level 220) on a table (110), and optionally a shadow (x 0.55)
    across sheet and table, so that the shadowed paper (121) is as dark as the table."""
    sheet = Image.new("L", (400, 300), 0)
    ImageDraw.Draw(sheet).polygon(CORNERS, fill=255)
    inside = np.asarray(sheet, dtype=np.float32) / 255.0
    scene = 110.0 + 110.0 * inside
    if shadow:
        mask = Image.new("L", (400, 300), 0)
        ImageDraw.Draw(mask).polygon([(0, 120), (220, 0), (400, 0), (400, 40), (0, 300)], fill=255)
        scene *= 1.0 - 0.45 * np.asarray(mask, dtype=np.float32) / 255.0
    image = Image.fromarray(scene.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    noise = np.random.default_rng(0).normal(0.0, 1.5, scene.shape)
    return np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.float32)


def _corners(found) -> list[tuple[float, float]]:
    """The pairwise intersections of the found sides nearest each true corner."""
    points = []
    for a in range(len(found.rhos)):
        for b in range(a + 1, len(found.rhos)):
            matrix = np.array([found.normals[a], found.normals[b]])
            if abs(np.linalg.det(matrix)) > 0.5:
                points.append(np.linalg.solve(matrix, [found.rhos[a], found.rhos[b]]))
    return [min(points, key=lambda p: np.hypot(p[0] - x, p[1] - y)) for x, y in CORNERS]


def test_a_sheet_crossed_by_a_shadow_is_found_to_its_corners() -> None:
    for shadow in (False, True):
        found = find_sides(_scene(shadow))
        assert found is not None and len(found.rhos) == 4, shadow
        for (x, y), (fx, fy) in zip(CORNERS, _corners(found), strict=True):
            assert np.hypot(fx - x, fy - y) < 4.0, (shadow, (x, y), (fx, fy))


def test_the_crop_is_the_sheet_with_the_table_painted_over() -> None:
    gray = _scene(True)
    crop = crop_to_sides(gray, find_sides(gray))
    assert 180 <= crop.shape[0] <= 215 and 255 <= crop.shape[1] <= 285
    # Nothing of the table is left (60 in the shadow, 110 lit): the paper is 121 and 220.
    assert np.percentile(crop, 0.1) > 105.0
    assert np.count_nonzero(crop > 160.0) > 0.2 * crop.size  # the lit paper is kept


def test_no_sheet_in_a_plain_shadowed_page_or_noise() -> None:
    page = np.full((300, 400), 210.0, np.float32)
    page[:, 250:] *= 0.6  # a page filling the frame, a shadow's one edge across it
    assert find_sides(page) is None
    noise = np.random.default_rng(1).uniform(0, 255, (300, 400)).astype(np.float32)
    assert find_sides(noise) is None
