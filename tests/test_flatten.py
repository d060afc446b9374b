"""``service.imaging.flatten``: a hard shadow is divided out of a page, the digit's
contrast kept; a page without one comes back as it is; only edges running through a
sheet count as crossing it; and the log image is rebuilt exactly from its gradient."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from service.imaging.edges import ShadowEdge
from service.imaging.flatten import _integrate, crossing, flatten_shadows
from tests.test_edges import PAPER, SIZE, TRIANGLE, page, polygon_mask, ring

CROSSING_SHADOW = [(250, 0), (400, 0), (400, 300), (330, 300)]  # over the ring's right half


def test_the_image_is_rebuilt_exactly_from_its_gradient() -> None:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((61, 90)).cumsum(axis=0).cumsum(axis=1)
    rebuilt = _integrate(np.diff(image, axis=1), np.diff(image, axis=0))
    assert abs(rebuilt.mean()) < 1e-9  # mean zero
    np.testing.assert_allclose(rebuilt, image - image.mean(), atol=1e-9)


def test_a_hard_shadow_is_divided_out_and_the_digit_kept() -> None:
    shadow = polygon_mask(TRIANGLE, blur=1.0)
    image = page(shadow, depth=0.5)
    flat = flatten_shadows(image)
    deep = (shadow > 0.99) & (ring() == 0.0)
    lit = (shadow == 0.0) & (ring() == 0.0)
    assert abs(float(np.median(image[deep])) - 0.5 * PAPER) < 5  # it was in shadow
    # the shadow's paper now at the lit paper's level, within 3%, and as even
    assert abs(float(np.median(flat[deep])) - PAPER) < 0.03 * PAPER
    assert abs(float(np.median(flat[lit])) - PAPER) < 0.03 * PAPER
    assert np.percentile(np.abs(flat[deep | lit] - PAPER), 99) < 0.1 * PAPER
    # the ring (85% darker than the paper) as dark as it was against the lit paper
    core = ring() == 1.0
    assert float(np.median(flat[core])) < 0.25 * PAPER


def test_a_digit_inside_a_shadow_comes_out_as_dark_against_the_paper_as_in_the_light() -> None:
    shadow = polygon_mask(TRIANGLE, blur=1.0)
    inside = ring(centre=(110, 80), radius=25.0)  # wholly in the triangle
    assert (shadow[inside > 0] > 0.99).all()
    rng = np.random.default_rng(0)
    image = PAPER * (1.0 - 0.85 * inside) * (1.0 - 0.5 * shadow) + rng.normal(0.0, 2.0, SIZE)
    flat = flatten_shadows(np.clip(image, 0, 255).astype(np.float32))
    core = inside == 1.0
    # in shadow: ink 0.15 * 0.5 * PAPER = 15; divided out, 30, as in the light
    assert abs(float(np.median(flat[core])) - 0.15 * PAPER) < 0.05 * PAPER
    assert abs(float(np.median(flat[(inside == 0.0) & (shadow > 0.99)])) - PAPER) < 0.03 * PAPER


def test_a_shadow_across_the_digit_is_divided_out_and_the_strokes_kept() -> None:
    shadow = polygon_mask(CROSSING_SHADOW)
    flat = flatten_shadows(page(shadow, depth=0.45))
    core = ring() == 1.0
    in_shadow, in_light = core & (shadow > 0.99), core & (shadow == 0.0)
    assert in_shadow.any() and in_light.any()
    # the ring as dark in the shadow as out of it
    assert abs(float(np.median(flat[in_shadow])) - float(np.median(flat[in_light]))) < 10
    # The paper around the ring: at the lit level, but for a smooth leak of the step
    # where the ring cuts the edge into pieces (it was 90 grey levels darker in shadow).
    around = np.zeros(SIZE, dtype=bool)
    around[90:210, 240:360] = True
    paper = around & (ring() == 0.0) & (shadow > 0.99)
    assert np.percentile(np.abs(flat[paper] - PAPER), 50) < 0.05 * PAPER
    assert np.percentile(np.abs(flat[paper] - PAPER), 90) < 0.12 * PAPER


def test_a_page_without_a_hard_shadow_is_returned_as_it_is() -> None:
    image = page(np.zeros(SIZE, np.float32))
    assert flatten_shadows(image) is image
    soft = page(polygon_mask(TRIANGLE, blur=8.0))  # a penumbra: a gradient, not an edge
    assert flatten_shadows(soft) is soft


def _edge(x0: float, y0: float, x1: float, y1: float) -> ShadowEdge:
    """A shadow edge from (x0, y0) to (x1, y1), in the line form ``edges`` gives."""
    angle = np.arctan2(y1 - y0, x1 - x0)
    cos, sin = float(np.sin(angle)), float(-np.cos(angle))  # a normal to the segment
    rho = x0 * cos + y0 * sin
    start, stop = sorted((-x0 * sin + y0 * cos, -x1 * sin + y1 * cos))
    empty = np.zeros(0, np.intp)
    return ShadowEdge(100.0, empty, empty, cos, sin, rho, start, stop)


def test_only_edges_through_the_middle_of_a_sheet_cross_it() -> None:
    box = (100, 300, 100, 400)  # top, bottom, left, right
    through = _edge(50, 120, 450, 280)  # a shadow's edge, corner to corner
    side = _edge(104, 100, 120, 300)  # the sheet's left side, tilted
    outside = _edge(0, 50, 500, 60)  # on the table above the sheet
    short = _edge(240, 190, 247, 193)  # inside, but only 8 px long
    assert crossing([through, side, outside, short], box) == [through]


def test_a_drawing_is_left_as_it_is() -> None:
    """A web canvas (pure white border) has no shadows: a grey filled shape on it,
    whose edges are straight steps by a shadow's factor, is drawn, not divided out."""
    from service.imaging.pipeline import paper_of

    triangle = [(60, 60), (200, 70), (80, 240)]
    canvas = np.where(polygon_mask(triangle) > 0.5, 0.5 * PAPER, 255.0) * (1.0 - 0.9 * ring())
    canvas = canvas.astype(np.float32)
    assert flatten_shadows(canvas) is not canvas  # as a photo, it would be divided out
    assert paper_of(canvas) is canvas


def test_a_shadow_across_a_sheet_on_a_table_is_divided_out_and_the_table_cropped() -> None:
    """A sheet on a dark table, a shadow band across sheet and table: the sheet is
    cropped as a whole, the shadow on it divided out, the digit kept."""
    from PIL import ImageFilter

    from service.imaging.pipeline import paper_of
    from service.imaging.sheet import isolate_sheet

    height, width = 384, 512
    image = np.full((height, width), 68.0)  # the table
    image[40:344, 60:452] = PAPER
    ys, xs = np.mgrid[0:height, 0:width]
    digit = np.clip(2.5 - np.abs(np.hypot(ys - 190, xs - 120) - 40), 0.0, 1.0)
    image *= 1.0 - 0.85 * digit
    band = Image.new("L", (width, height), 0)
    ImageDraw.Draw(band).polygon([(220, 0), (330, 0), (290, 384), (180, 384)], fill=255)
    image *= 1.0 - 0.45 * np.asarray(band, np.float32) / 255.0
    blurred = Image.fromarray(image.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    rng = np.random.default_rng(0)
    photo = (np.asarray(blurred, np.float32) + rng.normal(0.0, 2.0, (height, width))).astype(
        np.float32
    )
    before = isolate_sheet(photo)  # the sheet search alone leaves the shadow in
    assert np.percentile(before, 5) < 0.6 * PAPER
    paper = paper_of(photo)
    assert paper.shape[1] >= 360  # the whole sheet's width (392 px), not its lit part
    assert paper.shape[1] < 0.9 * width  # the table cropped off
    low, high = np.percentile(paper, (5, 95))
    assert low > 0.9 * PAPER and high < 1.1 * PAPER  # the shadow divided out
    assert float(paper.min()) < 0.5 * PAPER  # the digit kept
