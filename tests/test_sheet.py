"""``isolate_sheet``: a sheet of paper on a darker table is cropped out; nothing else is."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.imaging.sheet import isolate_sheet

RNG_SEED = 3


def scene(
    *,
    paper: float = 200.0,
    table: float = 50.0,
    sheet: tuple[int, int, int, int] = (60, 300, 80, 260),
    size: tuple[int, int] = (360, 340),
    noise: float = 5.0,
    soft_edge: float = 0.0,
) -> np.ndarray:
    """A table with a sheet (top, bottom, left, right) on it and a dark stroke on the
    sheet. ``soft_edge`` > 0 blurs the sheet's edge over that many pixels (a shadow)."""
    rng = np.random.default_rng(RNG_SEED)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom, left, right = sheet
    inside = np.minimum.reduce([ys - top, bottom - ys, xs - left, right - xs])
    if soft_edge:
        weight = 1 / (1 + np.exp(-inside * (4 / soft_edge)))
    else:
        weight = (inside >= 0).astype(np.float32)
    image = table + (paper - table) * weight
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    stroke = np.abs(np.hypot(ys - centre_y, xs - centre_x) - 40) < 5  # a "0"
    image[stroke] = 30.0
    return np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.float32)


def test_a_sheet_on_a_table_is_cropped_to_the_sheet_with_the_digit_kept():
    image = scene()
    sheet = isolate_sheet(image)
    assert sheet is not image
    height, width = sheet.shape
    # The box lies within the sheet (240 x 180): inset, but most of it kept.
    assert 200 <= height <= 240 and 140 <= width <= 180, sheet.shape
    assert sheet.min() < 60  # the digit's stroke is still there
    border = np.concatenate((sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]))
    assert np.percentile(border, 5) > 150  # no table left at the edges: all paper


def test_a_table_along_one_edge_only_is_cropped_away():
    image = scene(sheet=(-10, 370, 70, 350))  # paper to three edges, table on the left
    sheet = isolate_sheet(image)
    assert sheet is not image
    assert sheet.shape[1] <= 270 and sheet[:, :3].mean() > 150


def test_the_corners_of_a_tilted_sheet_are_painted_with_paper():
    image = np.full((400, 400), 45.0, np.float32)
    ys, xs = np.mgrid[0:400, 0:400].astype(np.float32)
    angle = math.radians(8)
    u = (xs - 200) * math.cos(angle) + (ys - 200) * math.sin(angle)
    v = -(xs - 200) * math.sin(angle) + (ys - 200) * math.cos(angle)
    image[(np.abs(u) < 110) & (np.abs(v) < 140)] = 210.0
    image[(np.abs(u) < 4) & (np.abs(v) < 60)] = 25.0  # a "1"
    image += np.random.default_rng(RNG_SEED).normal(0, 4, image.shape).astype(np.float32)
    sheet = isolate_sheet(image)
    assert sheet is not image
    dark = sheet < 120
    assert 0 < dark.mean() < 0.025  # the stroke, and nothing of the table's corners
    for corner in (sheet[:6, :6], sheet[:6, -6:], sheet[-6:, :6], sheet[-6:, -6:]):
        assert corner.mean() > 150  # painted with the paper's level
    rows = np.flatnonzero(dark.any(axis=1))
    assert rows[-1] - rows[0] >= 100  # the whole "1" (120 px long) is kept


def hard_shadow_over_writing() -> np.ndarray:
    image = scene(sheet=(-10, 370, -10, 350), paper=210.0)
    image[:, :110] *= 0.45  # the left third in a hard shadow, across the "0"
    image[150:230, 60:70] = 12.0  # and more writing inside the shadow
    return image


@pytest.mark.parametrize(
    "case",
    [
        "shadow",
        "hard shadow over writing",
        "page fills the frame",
        "drawn canvas",
        "small image",
        "light table",
    ],
)
def test_no_sheet_means_the_image_is_left_alone(case):
    image = {
        # light paper with a soft-edged dark area above and right of it: a shadow
        "shadow": lambda: scene(sheet=(100, 420, -20, 240), soft_edge=40.0),
        # a sharp-edged shadow over part of the writing: the stroke continues into it
        "hard shadow over writing": lambda: hard_shadow_over_writing(),
        # paper to every edge: nothing to crop
        "page fills the frame": lambda: scene(sheet=(-10, 370, -10, 350)),
        # a bold light digit on a perfectly uniform black canvas
        "drawn canvas": lambda: scene(paper=255.0, table=0.0, sheet=(90, 270, 120, 220), noise=0),
        # too small to be a photo of a sheet
        "small image": lambda: scene(size=(80, 80), sheet=(15, 65, 20, 60)),
        # a table hardly darker than the paper
        "light table": lambda: scene(table=170.0),
    }[case]()
    assert isolate_sheet(image) is image


def test_a_sheet_on_a_lighter_even_table_is_cropped_to_the_sheet():
    """A white desk, a little lighter than the paper: found on the negative."""
    image = scene(paper=200.0, table=228.0, noise=2.0)
    sheet = isolate_sheet(image)
    assert sheet is not image
    height, width = sheet.shape
    assert 200 <= height <= 240 and 140 <= width <= 180, sheet.shape
    assert sheet.min() < 60  # the digit's stroke is still there
    border = np.concatenate((sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]))
    assert np.percentile(border, 95) < 215  # the desk is gone from the edges: all paper


@pytest.mark.parametrize(
    "case", ["shadow on a page", "uneven light table", "desk as light as the paper"]
)
def test_a_darker_area_on_light_surroundings_is_not_always_a_sheet(case):
    image = {
        # a sharp-edged shadow (40% darker) on a page that fills the frame
        "shadow on a page": lambda: scene(paper=130.0, table=215.0),
        # the "desk" a gradient: uneven, as the bright side of a photo's light is
        "uneven light table": lambda: (
            scene(paper=200.0, table=228.0, noise=2.0)
            + np.linspace(-25.0, 25.0, 340, dtype=np.float32)[None, :]
        ),
        # hardly lighter than the paper
        "desk as light as the paper": lambda: scene(paper=200.0, table=205.0, noise=2.0),
    }[case]()
    assert isolate_sheet(image) is image
