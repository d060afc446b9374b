"""``service.imaging.edges``: a hard shadow's long straight edges are found, with seeds
inside the shadow at its level; strokes, soft edges and wood grain are not edges of a
shadow; and the ink image of a page with such a shadow keeps the digit, not the shadow."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from service.imaging.edges import shadow_edges, shadow_seeds
from service.imaging.ink import ink_image

PAPER = 200.0
SIZE = (300, 400)
TRIANGLE = [(20, 40), (200, 60), (40, 260)]  # (x, y): a shadow's wedge, 100+ px sides


def polygon_mask(points: list[tuple[int, int]], blur: float = 0.0) -> np.ndarray:
    """Coverage in [0, 1] of a polygon on a ``SIZE`` image, its edge blurred by ``blur``."""
    image = Image.new("L", (SIZE[1], SIZE[0]), 0)
    ImageDraw.Draw(image).polygon(points, fill=255)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(image, np.float32) / 255.0


def ring(centre: tuple[int, int] = (150, 300), radius: float = 40.0, pen: float = 4.0):
    """Coverage of a thin ring (a "0") at ``centre`` (row, column)."""
    ys, xs = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float32)
    distance = np.abs(np.hypot(ys - centre[0], xs - centre[1]) - radius)
    return np.clip(pen / 2 + 0.5 - distance, 0.0, 1.0)


def page(shadow: np.ndarray, depth: float = 0.5, noise: float = 2.0, seed: int = 0):
    """Paper with a dark ring, lit except where ``shadow`` darkens it by ``depth``."""
    rng = np.random.default_rng(seed)
    reflectance = PAPER * (1.0 - 0.85 * ring())
    image = reflectance * (1.0 - depth * shadow) + rng.normal(0.0, noise, SIZE)
    return np.clip(image, 0, 255).astype(np.float32)


def test_a_hard_shadows_edges_are_found_with_seeds_inside_at_its_level() -> None:
    shadow = polygon_mask(TRIANGLE, blur=1.0)
    image = page(shadow)
    edges = shadow_edges(image)
    assert len(edges) >= 2  # the triangle's sides (the third may be partly cut)
    for edge in edges:
        assert edge.length >= 80
        assert abs(edge.level - PAPER * 0.5) < 10  # the shadowed paper's level
    seeds = shadow_seeds(image)
    assert seeds.any()
    assert (shadow[seeds] > 0.9).all()  # all inside the shadow
    assert not (ring()[seeds] > 0.1).any()  # none on the digit


def test_a_shadow_crossing_the_digit_leaves_the_strokes_out_of_the_seeds() -> None:
    crossing = [(250, 0), (400, 0), (400, 300), (330, 300)]  # over the ring's right half
    shadow = polygon_mask(crossing)
    seeds = shadow_seeds(page(shadow, depth=0.45))
    assert seeds.any()
    assert (shadow[seeds] > 0.9).all()
    assert not (ring()[seeds] > 0.1).any()


def test_strokes_soft_edges_and_wood_grain_are_no_shadow_edges() -> None:
    # Strokes alone (a thin ring, a thick straight bar at a shadow's level but bounded
    # by its own second edge a pen's width away), a soft-edged shadow (a penumbra), and
    # a textured surface (wood grain) beside a straight edge.
    assert not shadow_edges(page(np.zeros(SIZE, np.float32)))
    bar = polygon_mask([(100, 50), (104, 50), (104, 250), (100, 250)])  # the pen's width
    assert not shadow_edges(page(bar, depth=0.5))
    assert not shadow_edges(page(polygon_mask(TRIANGLE, blur=8.0)))
    ys, xs = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float32)
    grain = 0.5 + 0.5 * np.cos(2 * np.pi * (ys + 0.3 * xs) / 9.0)
    wood = PAPER * 0.45 * (1.0 - 0.5 * grain**6)
    image = np.where(xs < 120, wood, page(np.zeros(SIZE, np.float32))).astype(np.float32)
    assert not shadow_edges(image)


def test_a_thick_flat_stroke_beside_its_darker_core_is_no_shadow_edge_when_strict() -> None:
    # A low-resolution digit's blocks: a grey column beside a black one, straight and
    # flat, as long as the digit.
    image = np.full(SIZE, PAPER, np.float32)
    image[40:260, 186:196] = 0.5 * PAPER  # the grey half of the stroke
    image[40:260, 196:212] = 0.1 * PAPER  # its dark core
    assert not shadow_edges(image, strict=True)


def test_the_ink_of_a_page_with_a_wide_hard_shadow_is_the_digit_alone() -> None:
    """A page filling the frame (uniform border), a wide sharp-edged shadow beside a
    thin digit: the shadow is background, the digit's strokes are ink."""
    shadow = polygon_mask(TRIANGLE, blur=0.7)
    image = page(shadow, depth=0.55)
    ink = ink_image(image)
    inside = polygon_mask(TRIANGLE) > 0.99
    core = np.zeros(SIZE, bool)
    core[60:220, 50:120] = True  # well inside the triangle, away from its edges
    assert np.percentile(ink[inside & core], 99) < 40  # the shadow is not ink
    assert ink[ring() > 0.9].mean() > 150  # the digit is
