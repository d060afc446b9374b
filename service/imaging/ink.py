"""From a grayscale image to "ink": a light digit on a zero background.

Steps, all vectorised numpy on the (at most 512x512) working image:

1. Polarity. The ink is the side whose extreme (the k-th darkest or lightest pixel)
   lies furthest from the background level, the border's median for a drawing and
   the global median for a photo (the digit covers a minority of it): dark on light
   (paper, a web canvas) is inverted to MNIST's light on dark.
2. Background. A uniform border (a drawing, an MNIST crop, a scan) means a flat
   background at the border's level, unless a hard shadow lies inside it
   (``service.imaging.shadow``: a cropped sheet, a page filling the frame).
   Otherwise (a photo: shadows, gradients, a sheet's or a hard shadow's sharp
   edges) it is a grey opening of the image by a
   square three stroke widths wide: everything but the strokes, edges kept sharp. On
   paper the residual is divided by the local illumination, since ink contrast
   scales with it. Ruled and grid lines are subtracted (``service.imaging.lines``),
   then a hard shadow's narrow wedges are grown back into the background from its
   wide parts (``service.imaging.regrow``), and a whole hard shadow from just inside
   its long straight edges (``service.imaging.edges``), however narrow it is against
   the opening; a uniform border holding such an edge is a photo's, too.
3. Noise floor and contrast stretch. The background's robust spread (MAD) gives a
   floor below which everything is background; the typical full-ink level maps to
   255. Too little contrast above the noise means there is no digit.

The ink's bounding box is found by ``service.imaging.box``.
"""

from __future__ import annotations

import numpy as np

from service.errors import NoDigitFound
from service.imaging.edges import shadow_edges, shadow_seeds
from service.imaging.levels import NO_DIGIT, border_pixels
from service.imaging.lines import remove_lines
from service.imaging.morphology import opening
from service.imaging.regrow import regrow
from service.imaging.shadow import hard_shadow
from service.imaging.stroke import stroke_width

MIN_CONTRAST = 20.0  # grey levels between background and ink below which there is no digit
PEAK_SIGMAS = 6.0  # ... or fewer background standard deviations than this
FLOOR_SIGMAS = 3.0  # residuals under this many standard deviations are background
FLAT_BORDER = 8.0  # border spread (p90 - p10, grey levels) up to which the background is flat
FULL_SCALE_SLACK = 8.0  # full ink within this of 255 grey levels needs no stretching
EXTREME_RANK = 3  # the extremes are the k-th darkest/lightest pixels, k at least this
EXTREME_SHARE = 2000  # ... and at least one pixel in this many
SUBSAMPLE_SIZE = 65536  # statistics of larger images use a quarter of the pixels
MIN_CELL = 12  # smallest background cell, in pixels
MAX_CELLS = 3  # at least this many background cells along the shorter side
OPENING_STROKES = 3.0  # the background's opening is this many stroke widths wide...
MIN_OPENING = 7  # ... and at least this many pixels
MIN_LEVEL = 8.0  # background level floor for relative contrast
REGROW_SHARE = 0.05  # a shadow's sliver is within this share of the paper's level of it
REGROW_ROOM = 5  # ... grown only where the image is this many openings wide
STROKE_LEVEL = 0.6  # share of the ink's contrast that counts as stroke for its width
SHADOW_EDGE_STROKES = 8.0  # inside a uniform border, a shadow's edge is this many widths long
SHADOW_LEVEL_TOL = 0.1  # ... the pen's width judged without pixels this near a shadow's level
SHADOW_UNDER_INK = 0.1  # ... and the ink darker than the shadow by this share of its level
SQRT6 = 6.0**0.5  # deviation of a second difference of unit-deviation noise


def ink_image(gray: np.ndarray) -> np.ndarray:
    """Grey levels ``[0, 255]`` -> float32 ink in ``[0, 255]``: light on dark, background 0.

    Raises ``NoDigitFound`` when nothing stands out of the background.
    """
    level = _flat_level(gray)
    if level is not None or min(gray.shape) < MAX_CELLS * MIN_CELL:
        if level is None:
            level = _median(gray.reshape(-1))
        residual = gray - level
        darkest, lightest = _extremes(residual)
        paper = -darkest > lightest
        if paper:  # dark ink on a light background
            np.negative(residual, out=residual)
            lightest = -darkest
        shadowed = paper and _shadow_edges(gray, residual, lightest)
        if not (shadowed or hard_shadow(residual, lightest)):
            return _stretch(residual, lightest, drawn=True)
    # A photo. A median surface of cells too large for any stroke to fill gives the
    # polarity, judged by contrast relative to the local level (illumination multiplies
    # everything), and the stroke width. That sets the cells of the final surface: as
    # small as the strokes allow, to follow shadows closely.
    limit = min(gray.shape) // MAX_CELLS
    coarse = _surface(gray, limit, 0.5)
    darkest, lightest = _extremes(gray / np.maximum(coarse, MIN_LEVEL))
    inverted = 1.0 - darkest > lightest - 1.0
    residual = np.subtract(coarse, gray, out=coarse) if inverted else gray - coarse
    width = stroke_width(residual > STROKE_LEVEL * _extremes(residual)[1])
    light = 255.0 - gray if inverted else gray
    # The background is what is left of the image once every bright thing narrower than
    # a few stroke widths is taken out (a grey opening): smooth gradients and the sharp
    # edges of hard shadows, of the sheet, of the table are all followed exactly.
    size = int(np.clip(round(OPENING_STROKES * width), MIN_OPENING, limit)) | 1
    surface = opening(light, size)
    residual = light - surface
    if not inverted:
        remove_lines(residual)
        return _stretch(residual, _extremes(residual)[1])
    # Paper: light is reflected, so ink contrast scales with the local illumination.
    # Dividing by it makes a digit in a shadow as strong as one in full light.
    paper = np.maximum(255.0 - surface, 1.0)
    level = _median(paper.reshape(-1)[::7])
    residual *= level / paper
    remove_lines(residual)
    # Hard shadows: their narrow wedges and slivers are background too (grown back
    # from the shadow's wide parts), once the lines, long but thin, are gone; and so
    # is a whole shadow found by its long straight edges, however narrow it is
    # against the pen (grown from just inside those edges).
    # Where the background is grown, the residual is exactly zero: the noise is judged
    # before, where it is everywhere the same.
    light = surface + residual * (paper / level)
    seeds = shadow_seeds(255.0 - light)
    # The digit fills much of the image (a crop): a wide region may be its own (a
    # blurred stroke, a filled loop), not a shadow; only straight edges tell.
    roomy = size * REGROW_ROOM <= min(gray.shape)
    tol = REGROW_SHARE * level
    grown = regrow(light, surface, tol) if roomy else surface
    if seeds.any():
        shadow = regrow(light, surface, tol, seeds=seeds)
        grown = grown if shadow is surface else np.maximum(grown, shadow)
    if grown is surface:
        return _stretch(residual, _extremes(residual)[1])
    noise = _noise(residual, drawn=False)
    residual = light - grown
    residual *= level / np.maximum(255.0 - grown, 1.0)
    return _stretch(residual, _extremes(residual)[1], noise=noise)


def _shadow_edges(gray: np.ndarray, residual: np.ndarray, lightest: float) -> bool:
    """Whether paper with a uniform border holds a hard shadow's long straight edge: long
    against the pen, too (a thick or blocky stroke has straight edges a few widths long).
    The pen's width is judged without the pixels at the shadows' levels."""
    # The pen is darker than a shadow: a "shadow" as dark as the darkest ink is the
    # digit itself (a thick, flat stroke with straight edges).
    ink = _extremes(gray)[0]
    edges = [e for e in shadow_edges(gray, strict=True) if ink < (1.0 - SHADOW_UNDER_INK) * e.level]
    if not edges:
        return False
    strokes = residual > STROKE_LEVEL * lightest
    for edge in edges:
        strokes &= np.abs(gray - edge.level) > SHADOW_LEVEL_TOL * edge.level
    least = SHADOW_EDGE_STROKES * stroke_width(strokes)
    return any(edge.length >= least for edge in edges)


def _stretch(
    residual: np.ndarray,
    lightest: float,
    *,
    drawn: bool = False,
    noise: tuple[float, float] | None = None,
) -> np.ndarray:
    """Floor the background noise and map the typical full ink level to 255, in place.

    ``noise``: the background's level and spread, if known (else judged here).
    """
    flat = residual.reshape(-1)
    sample = flat[::4] if flat.size > SUBSAMPLE_SIZE else flat
    base, sigma = _noise(residual, drawn=drawn) if noise is None else noise
    peak = lightest - base
    if peak < max(MIN_CONTRAST, PEAK_SIGMAS * sigma):
        raise NoDigitFound(NO_DIGIT)
    floor = base + FLOOR_SIGMAS * sigma
    strong = sample[sample > base + 0.5 * peak]
    if strong.size == 0:  # the lightest pixels were left out of the sample
        strong = flat[flat > base + 0.5 * peak]
    rank = int(0.9 * (strong.size - 1))
    full = float(np.partition(strong, rank)[rank])
    if floor != 0.0:
        residual -= floor
    if abs(full - floor - 255.0) > FULL_SCALE_SLACK:  # leave full-range images untouched
        residual *= 255.0 / max(full - floor, 1e-3)
    return np.clip(residual, 0.0, 255.0, out=residual)


def _noise(residual: np.ndarray, *, drawn: bool) -> tuple[float, float]:
    """The background's level and robust spread (median, scaled MAD) in ``residual``.

    ``drawn``: the background is the (flat) border's level, so it is zero here, and the
    ink may cover most of the image (a thick or blurred digit cropped as tightly as
    MNIST's): the noise is then judged from the border and from the image's fine
    texture, never from the ink's own spread of levels.
    """
    flat = residual.reshape(-1)
    sample = flat[::4] if flat.size > SUBSAMPLE_SIZE else flat
    if np.count_nonzero(sample) * 2 < sample.size:  # a clean background, exactly zero
        return 0.0, 0.0
    if drawn:
        border = border_pixels(residual)
        base = _median(border)
        return base, max(1.4826 * _median(np.abs(border - base)), _fine_noise(residual))
    base = _median(sample)
    return base, 1.4826 * _median(np.abs(sample - base))


def _fine_noise(values: np.ndarray) -> float:
    """Standard deviation of pixel noise, from second differences along rows.

    A stroke's levels, blurred or not, change smoothly (second differences near zero
    except at its edges); independent noise of deviation s gives second differences of
    deviation s * sqrt(6). Their median absolute value is robust to the edges.
    """
    rows = values[::2] if values.size > SUBSAMPLE_SIZE else values
    second = np.abs(rows[:, 2:] - 2.0 * rows[:, 1:-1] + rows[:, :-2]).reshape(-1)
    return 1.4826 * _median(second) / SQRT6 if second.size else 0.0


def _extremes(values: np.ndarray) -> tuple[float, float]:
    """The k-th darkest and k-th lightest values: extremes that ignore stray pixels.

    On a large image every other row and column is plenty (strokes are long).
    """
    flat = (values[::2, ::2] if values.size > SUBSAMPLE_SIZE else values).reshape(-1)
    count = flat.size
    k = min(max(EXTREME_RANK, count // EXTREME_SHARE), count)
    ends = np.partition(flat, (k - 1, count - k))
    return float(ends[k - 1]), float(ends[count - k])


def _median(values: np.ndarray) -> float:
    """Upper median, without ``np.median``'s overhead on small arrays."""
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])


def _flat_level(gray: np.ndarray) -> float | None:
    """The border's level if it is uniform (a drawing, a scan, an MNIST crop), else None."""
    border = border_pixels(gray)
    ranks = (border.size // 10, border.size // 2, border.size * 9 // 10)
    p10, p50, p90 = np.partition(border, ranks)[list(ranks)]
    return float(p50) if p90 - p10 <= FLAT_BORDER else None


def _surface(values: np.ndarray, cell: int, quantile: float) -> np.ndarray:
    """Smooth background: per-cell quantile, 3x3 median across cells, bilinear in between.

    Cell centres lie on a grid that starts on the image's first row and column and
    reaches its last ones, the edge cells being mirrored half cells, so the surface
    is measured (not extrapolated) right up to the edges.
    """
    height, width = values.shape
    half = cell // 2
    rows, cols = -(-(height - 1) // cell) + 1, -(-(width - 1) // cell) + 1
    pads = ((half, rows * cell - half - height), (half, cols * cell - half - width))
    padded = np.pad(values, pads, mode="reflect")
    step = 2 if cell >= 24 else 1  # every other pixel is plenty for a big cell
    cells = padded.reshape(rows, cell, cols, cell)[:, ::step, :, ::step]
    cells = cells.transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    rank = int(quantile * (cells.shape[2] - 1))
    mesh = _median3(np.partition(cells, rank, axis=2)[:, :, rank])
    # Bilinear between cell centres, separably (no BLAS: its threads cost more than this).
    low, high, frac = _taps(height, rows, cell)
    mesh = mesh[low] + (mesh[high] - mesh[low]) * frac[:, None]
    low, high, frac = _taps(width, cols, cell)
    return mesh[:, low] + (mesh[:, high] - mesh[:, low]) * frac


def _median3(grid: np.ndarray) -> np.ndarray:
    """3x3 median filter with replicated edges, for a small 2-D grid."""
    padded = np.pad(grid, 1, mode="edge")
    rows, cols = grid.shape
    stack = np.stack([padded[i : i + rows, j : j + cols] for i in range(3) for j in range(3)])
    return np.partition(stack, 4, axis=0)[4]


def _taps(size: int, cells: int, cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``size`` pixels: the cell centres on either side, and the second's weight."""
    position = np.arange(size, dtype=np.float32) / cell
    low = np.minimum(position.astype(np.intp), max(cells - 2, 0))
    high = np.minimum(low + 1, cells - 1)
    return low, high, np.minimum(position - low, 1.0)
