"""From a grayscale image to "ink": a light digit on a zero background, and its box.

Steps, all vectorised numpy on the (at most ~0.5 Mpx) working image:

1. Background level. A uniform border (a drawing, an MNIST crop, a scan) means a
   flat background at the border's level. Otherwise (a photo: shadows, gradients)
   the background is a smooth surface: the median of coarse cells, median-filtered
   across cells (cells covered by ink are outvoted), bilinearly interpolated.
2. Polarity. The ink is the side that departs furthest from the background: dark
   on light (paper, web canvas) is inverted to MNIST's light on dark.
3. Noise floor and contrast stretch. The background's robust spread (MAD) gives a
   floor below which everything is background; the typical full-ink level maps to
   255. Too little contrast above the noise means there is no digit.
4. Bounding box of the clearly-inked pixels, ignoring specks: row and column runs
   separated from the digit by empty lines and holding under 2% of its ink.
"""

from __future__ import annotations

import numpy as np

from service.errors import NoDigitFound

NO_DIGIT = "no digit found"

MIN_CONTRAST = 20.0  # grey levels between background and ink below which there is no digit
PEAK_SIGMAS = 6.0  # ... or fewer background standard deviations than this
FLOOR_SIGMAS = 3.0  # residuals under this many standard deviations are background
FLAT_BORDER = 8.0  # border spread (p90 - p10, grey levels) up to which the background is flat
BOX_LEVEL = 0.2 * 255  # ink level (after stretching) that counts for the bounding box
FULL_SCALE_SLACK = 8.0  # full ink within this of 255 grey levels needs no stretching
SPECK_MASS = 0.02  # detached runs holding less of the ink than this are specks
EXTREME_RANK = 3  # the extremes are the k-th darkest/lightest pixels, k at least this
EXTREME_SHARE = 2000  # ... and at least one pixel in this many
CELLS = 6  # background cells along the shorter side of a photo
MIN_CELL = 12  # smallest background cell, in pixels


def ink_image(gray: np.ndarray) -> np.ndarray:
    """Grey levels ``[0, 255]`` -> float32 ink in ``[0, 255]``: light on dark, background 0.

    Raises ``NoDigitFound`` when nothing stands out of the background.
    """
    residual = gray - _background(gray)
    flat = residual.reshape(-1)
    # Extremes that ignore a few stray pixels: the k-th darkest and k-th lightest.
    count = flat.size
    k = min(max(EXTREME_RANK, count // EXTREME_SHARE), count)
    ends = np.partition(flat, (k - 1, count - k))
    darkest, lightest = float(ends[k - 1]), float(ends[count - k])
    if -darkest > lightest:  # dark ink on a light background
        np.negative(residual, out=residual)
        lightest = -darkest
    sample = flat[::4] if count > 65536 else flat
    base = _median(sample)
    sigma = 1.4826 * _median(np.abs(sample - base))
    peak = lightest - base
    if peak < max(MIN_CONTRAST, PEAK_SIGMAS * sigma):
        raise NoDigitFound(NO_DIGIT)
    floor = base + FLOOR_SIGMAS * sigma
    strong = flat[flat > base + 0.5 * peak]
    full = float(np.partition(strong, int(0.9 * (strong.size - 1)))[int(0.9 * (strong.size - 1))])
    if floor != 0.0:
        residual -= floor
    if abs(full - floor - 255.0) > FULL_SCALE_SLACK:  # leave full-range images untouched
        residual *= 255.0 / max(full - floor, 1e-3)
    return np.clip(residual, 0.0, 255.0, out=residual)


def _median(values: np.ndarray) -> float:
    """Upper median, without ``np.median``'s overhead on small arrays."""
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` (half-open) of the ink, specks left out."""
    mass = np.where(ink > BOX_LEVEL, ink, 0.0)
    top, bottom, left, right = 0, ink.shape[0], 0, ink.shape[1]
    for _ in range(4):  # dropping a row speck can uncover a column speck, and so on
        box = mass[top:bottom, left:right]
        start, stop, rows_cut = _main_run(box.sum(axis=1))
        first, last, cols_cut = _main_run(box.sum(axis=0))
        top, bottom, left, right = top + start, top + stop, left + first, left + last
        if not (rows_cut or cols_cut):
            break
    if bottom <= top or right <= left:
        raise NoDigitFound(NO_DIGIT)
    # Take in the faint antialiased fringe that touches the box, a few lines at most.
    reach = max(1, max(bottom - top, right - left) // 10)
    inked = ink > 0
    top -= _leading(inked[max(top - reach, 0) : top, left:right].any(axis=1)[::-1])
    bottom += _leading(inked[bottom : bottom + reach, left:right].any(axis=1))
    left -= _leading(inked[top:bottom, max(left - reach, 0) : left].any(axis=0)[::-1])
    right += _leading(inked[top:bottom, right : right + reach].any(axis=0))
    return top, bottom, left, right


def _leading(flags: np.ndarray) -> int:
    """Number of leading ``True`` values."""
    if flags.all():
        return int(flags.size)
    return int(np.argmin(flags))


def _main_run(profile: np.ndarray) -> tuple[int, int, bool]:
    """Span of the non-speck runs of non-zero ``profile``, and whether specks were cut."""
    where = np.flatnonzero(profile)
    if where.size == 0:
        return 0, 0, False
    first, last = int(where[0]), int(where[-1]) + 1
    if last - first == where.size:  # one run: nothing to cut
        return first, last, False
    inked = np.concatenate(([False], profile > 0, [False]))
    edges = np.flatnonzero(inked[1:] != inked[:-1])
    starts, stops = edges[0::2], edges[1::2]
    cumulative = np.concatenate(([0.0], np.cumsum(profile)))
    run_mass = cumulative[stops] - cumulative[starts]
    keep = np.flatnonzero(run_mass >= SPECK_MASS * cumulative[-1])
    start, stop = int(starts[keep[0]]), int(stops[keep[-1]])
    return start, stop, (start, stop) != (first, last)


def _background(gray: np.ndarray) -> np.ndarray | float:
    """The background level: a constant, or a smooth surface the size of ``gray``."""
    border = np.concatenate((gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]))
    ranks = (border.size // 10, border.size // 2, border.size * 9 // 10)
    p10, p50, p90 = np.partition(border, ranks)[list(ranks)]
    height, width = gray.shape
    cell = max(MIN_CELL, min(height, width) // CELLS)
    if p90 - p10 <= FLAT_BORDER or min(height, width) < 2 * cell:
        return float(p50)
    rows, cols = -(-height // cell), -(-width // cell)
    padded = np.pad(gray, ((0, rows * cell - height), (0, cols * cell - width)), mode="edge")
    step = 2 if cell >= 24 else 1  # every other pixel is plenty for a cell's median
    cells = padded.reshape(rows, cell, cols, cell)[:, ::step, :, ::step]
    mesh = np.median(cells.transpose(0, 2, 1, 3).reshape(rows, cols, -1), axis=2)
    mesh = _median3(mesh).astype(np.float32)
    return _interpolation(height, rows, cell) @ mesh @ _interpolation(width, cols, cell).T


def _median3(grid: np.ndarray) -> np.ndarray:
    """3x3 median filter with replicated edges, for a small 2-D grid."""
    padded = np.pad(grid, 1, mode="edge")
    rows, cols = grid.shape
    stack = [padded[i : i + rows, j : j + cols] for i in range(3) for j in range(3)]
    return np.median(np.stack(stack), axis=0)


def _interpolation(size: int, cells: int, cell: int) -> np.ndarray:
    """``(size, cells)`` weights interpolating cell centres linearly, clamped at the ends."""
    position = np.clip((np.arange(size, dtype=np.float32) + 0.5) / cell - 0.5, 0, cells - 1)
    low = np.minimum(position.astype(np.int64), max(cells - 2, 0))
    frac = position - low
    weights = np.zeros((size, cells), dtype=np.float32)
    index = np.arange(size)
    weights[index, low] = 1.0 - frac
    if cells > 1:
        weights[index, low + 1] = frac
    return weights
