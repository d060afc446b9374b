"""A sheet of paper photographed on a table: keep the sheet, drop the table.

Left in, the table around a sheet is the strongest "ink" in the photo (dark, against
light paper) and its edges become the digit's bounding box. So before looking for
ink, a photo is checked on a coarse grid of block means for a light, solid,
roughly rectangular region with a clearly darker surround on at least two sides.
When there is one, the image is cropped to it, and what is left of the surround
inside the crop (the corners of a tilted sheet) is painted with the paper's level.
Failing that, the same search on the negative finds a sheet a little darker than an
even, lighter table (a white desk).

The checks are conservative, because a false sheet would crop the digit: a drawn
canvas has a perfectly uniform border, a shadow's edge is soft where paper's is
sharp, a hard shadow falls on paper that may carry strokes where a table carries
none, a light digit on a dark board is too small or fills too little of its box,
and a page that fills the frame leaves no surround.
"""

from __future__ import annotations

import numpy as np

from service.imaging.levels import border_pixels
from service.imaging.morphology import closing
from service.imaging.regrow import regrow

Box = tuple[int, int, int, int]  # top, bottom, left, right (half-open)

GRID = 48  # coarse cells along the shorter side
DRAWN_BORDER = 2.0  # a border this uniform (p90 - p10) is a drawing's canvas, not a table
PURE_LEVEL = 4.0  # ... if it is this close to black or white (a table is neither)
MIN_SIDE = 96  # smaller images (crops, icons) are not photos of a sheet: 2 pixels a cell
MIN_SHARE = 0.08  # the sheet covers at least this share of the image...
MAX_SHARE = 0.95  # ... and leaves at least this much for the table
MIN_SPAN = 0.3  # ... and spans at least this share of its height and of its width
MIN_FILL = 0.6  # light cells fill at least this share of the sheet's box
MIN_STEP = 40.0  # the sheet is this many grey levels lighter than the table...
MAX_RATIO = 0.7  # ... and the table at most this share of the sheet's level
MIN_STEP_LIGHTER = 10.0  # a sheet on a lighter table: this many grey levels darker ...
LIGHTER_RATIO = 0.8  # ... and at least this share of the table's level (a shadow is darker)
EVEN_TABLE = 12.0  # ... on a table whose cells vary (p90 - p10) by at most this much ...
STEP_OVER_SPREAD = 2.0  # ... and that many times less than the step
MIN_SIDES = 1  # table on at least this many sides of the sheet
SIDE_CELLS = 2  # a side has table if this many cell rows (or columns) of it are outside
LINE_SHARE = 0.25  # a cell row or column is part of the sheet if this share is light
MAX_EDGE = 6.0  # a sheet's edge goes from table to paper within this many pixels
# (on three lines out of four; a table's measures 3 here, a shadow's 10 or more) ...
EDGE_SAMPLES = 9  # ... measured across each side with table, at this many places
SMOOTHING = 3  # pixels averaged along each line across an edge
MARK_CELLS = 3  # a mark is narrower than this many cells ...
MARK_STEP = 25.0  # ... and this much darker than the surround (as a whole and nearby) ...
MARK_DEPTH = 0.4  # ... or this share of its median, whichever is more
MARK_TOL = 0.1  # a dark region's narrow parts are within this share of the surround's level
MARK_LIMIT = 0.002  # a surround with more marks than this share is shadowed paper
SMOOTH_RATIO = 1.5  # ... if it is at most this much rougher than the sheet (pixel steps)
SMOOTH_SLACK = 1.0  # ... plus this many grey levels; a textured table is rougher


def isolate_sheet(gray: np.ndarray) -> np.ndarray:
    """``gray`` cropped to the sheet of paper in it, or ``gray`` itself if there is none."""
    found = locate_sheet(gray)
    return gray if found is None else found[0]


def locate_sheet(gray: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """The sheet of paper in ``gray``, cropped and its surround painted, and the crop's
    ``(top, bottom, left, right)`` in ``gray``; None if there is none."""
    height, width = gray.shape
    if min(height, width) < MIN_SIDE or is_drawing(gray):
        return None
    found = _find_sheet(gray, gray, lighter_table=False)
    if found is not None:
        return found
    # A sheet on a lighter table (a white desk): the same search on the negative, the
    # sheet a little darker than its surround but still a paper's level, far lighter
    # than any ink or shadow.
    inverted = 255.0 - gray
    found = _find_sheet(inverted, gray, lighter_table=True)
    if found is None:
        return None
    sheet, box = found
    return np.subtract(255.0, sheet, out=sheet), box


def _find_sheet(
    values: np.ndarray, gray: np.ndarray, *, lighter_table: bool
) -> tuple[np.ndarray, Box] | None:
    """The light sheet of ``values`` (``gray``, or its negative for a lighter table),
    cropped and its surround painted, and the crop's box; or None. ``gray`` is the
    photo itself, for the check on writing in the surround."""
    height, width = values.shape
    min_step = MIN_STEP_LIGHTER if lighter_table else MIN_STEP
    cell = min(height, width) // GRID
    rows, cols = height // cell, width // cell
    coarse = values[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    # On the negative, the digit's ink is the brightest of all: capped, lest it be
    # what the threshold splits off.
    split = _otsu(np.minimum(coarse, np.percentile(coarse, 90)) if lighter_table else coarse)
    light = coarse > split
    share = float(light.mean())
    if not MIN_SHARE <= share <= MAX_SHARE:
        return None
    paper, table = float(np.median(coarse[light])), float(np.median(coarse[~light]))
    if paper - table < min_step:
        return None
    if lighter_table:
        # In grey levels: the sheet at least this share of the table's (a shadow is
        # darker); the table even (a white desk), where the bright side of a lighting
        # gradient is not, and the step clear of its unevenness.
        surround = coarse[~light]
        ranks = (surround.size // 10, surround.size * 9 // 10)
        low, high = np.partition(surround, ranks)[list(ranks)]
        if 255.0 - paper < LIGHTER_RATIO * (255.0 - table) or high - low > EVEN_TABLE:
            return None
        if paper - table < STEP_OVER_SPREAD * (high - low):
            return None
    elif table > MAX_RATIO * paper:
        return None
    inside_rows = np.flatnonzero(light.mean(axis=1) >= LINE_SHARE)
    inside_cols = np.flatnonzero(light.mean(axis=0) >= LINE_SHARE)
    if inside_rows.size == 0 or inside_cols.size == 0:
        return None
    top, bottom = int(inside_rows[0]), int(inside_rows[-1]) + 1
    left, right = int(inside_cols[0]), int(inside_cols[-1]) + 1
    margins = (top, rows - bottom, left, cols - right)
    if sum(m >= SIDE_CELLS for m in margins) < MIN_SIDES:
        return None
    if bottom - top < MIN_SPAN * rows or right - left < MIN_SPAN * cols:
        return None
    if light[top:bottom, left:right].mean() < MIN_FILL:
        return None
    box = (top, bottom, left, right)
    if _edge_width(values, cell, box, margins, min_step / 2) > MAX_EDGE:
        return None  # a soft edge: the penumbra of a shadow, not the edge of a sheet
    if _marked(gray, cell, box):
        return None  # writing in the surround: paper in a hard shadow, not a table
    return _crop_and_paint(values, coarse, light, cell, box)


def _crop_and_paint(
    gray: np.ndarray,
    coarse: np.ndarray,
    light: np.ndarray,
    cell: int,
    box: Box,
) -> tuple[np.ndarray, Box]:
    """The sheet's box (one cell in from each side), its surround painted over, and
    that box in pixels.

    Along each cell row and column, the cells before the first light cell and after
    the last one (and that cell too, where the sheet's edge is blurred) are surround.
    They take the level of the paper next to them, so that a lighting gradient
    carries on into them. The digit's own dark cells lie between light ones and stay.
    """
    top, bottom, left, right = box
    top, bottom = min(top + 1, bottom - 1), max(bottom - 1, top + 1)
    left, right = min(left + 1, right - 1), max(right - 1, left + 1)
    sheet = light[top:bottom, left:right]
    fill = coarse[top:bottom, left:right].copy()
    outside = np.zeros_like(sheet)
    for axis in (1, 0):  # along rows, then along columns
        # Transposed views for columns: writes go to ``fill`` and ``outside``.
        lines, levels, surround = (sheet, fill, outside) if axis else (sheet.T, fill.T, outside.T)
        for line in range(lines.shape[0]):
            where = np.flatnonzero(lines[line])
            if where.size == 0:  # no paper along this line: all surround
                surround[line] = True
                continue
            first, last = int(where[0]), int(where[-1])
            inner_first, inner_last = min(first + 1, last), max(last - 1, first)
            levels[line, : first + 1] = levels[line, inner_first]
            levels[line, last:] = levels[line, inner_last]
            surround[line, : first + 1] = True
            surround[line, last:] = True
    crop = gray[top * cell : bottom * cell, left * cell : right * cell].copy()
    mask = np.repeat(np.repeat(outside, cell, axis=0), cell, axis=1)
    painted = np.repeat(np.repeat(fill, cell, axis=0), cell, axis=1)
    crop[mask] = painted[mask]
    return crop, (top * cell, bottom * cell, left * cell, right * cell)


def _edge_width(
    gray: np.ndarray,
    cell: int,
    box: Box,
    margins: tuple[int, int, int, int],
    min_rise: float,
) -> float:
    """Width, in pixels, of the rise from table to paper at the softest side of the box.

    Measured on each side that has table beyond it, on lines across the side: from
    the last pixel under a quarter of the way from table to paper to the first one
    over three quarters of the way. Paper's edge is sharp all round; a shadow's
    penumbra is soft, even where one side of the lit area ends at a stroke.
    """
    top, bottom, left, right = (v * cell for v in box)
    reach = 3 * cell
    across = np.linspace(left + (right - left) // 4, right - (right - left) // 4, EDGE_SAMPLES)
    down = np.linspace(top + (bottom - top) // 4, bottom - (bottom - top) // 4, EDGE_SAMPLES)
    sides = (  # lines from the table inwards, one list per side
        [gray[max(top - reach, 0) : top + reach, int(c)] for c in across],
        [gray[max(bottom - reach, 0) : bottom + reach, int(c)][::-1] for c in across],
        [gray[int(r), max(left - reach, 0) : left + reach] for r in down],
        [gray[int(r), max(right - reach, 0) : right + reach][::-1] for r in down],
    )
    widest = 0.0
    for margin, lines in zip(margins, sides, strict=True):
        if margin >= SIDE_CELLS:
            widths = [w for w in (_rise(line, cell, min_rise) for line in lines) if w is not None]
            if not widths:
                return float("inf")
            # A quarter of the lines may cross a stroke of the digit, whose edges are sharp.
            widest = max(widest, float(np.percentile(widths, 75)))
    return widest


def _rise(line: np.ndarray, ends: int, min_rise: float) -> int | None:
    """Pixels from the last one under a quarter of the way from the line's start level
    to its end level (medians of ``ends`` pixels) to the first one over three quarters
    of it; None where the line does not rise by ``min_rise``."""
    if line.size <= max(SMOOTHING, 2 * ends):
        return None
    smooth = np.convolve(line, np.full(SMOOTHING, 1.0 / SMOOTHING), mode="valid")
    start, end = float(np.median(smooth[:ends])), float(np.median(smooth[-ends:]))
    if end - start < min_rise:
        return None
    above = smooth > start + 0.75 * (end - start)
    rise = int(above.argmax())
    under = np.flatnonzero(smooth[:rise] < start + 0.25 * (end - start))
    return rise - int(under[-1]) if under.size else None


def _marked(gray: np.ndarray, cell: int, box: Box) -> bool:
    """Whether the surround of ``box`` holds dark marks (strokes), as a table does not.

    A mark is darker than the surround as a whole (its median) and than the surround
    around it (the grey closing over a few cells): narrow, as a stroke is. A hard
    shadow's wide part on the table is not one, nor is a strip of table between the
    sheet and the frame.
    """
    top, bottom, left, right = (v * cell for v in box)
    outside = np.ones(gray.shape, dtype=bool)
    outside[top:bottom, left:right] = False
    surround = gray[outside]
    level = float(np.median(surround))
    step = max(MARK_STEP, MARK_DEPTH * level)
    # The closing, grown back into the narrow parts of wide dark regions (the tip of a
    # shadow on the table is no mark): what is left darker than it is narrow all along.
    negative = 255.0 - gray
    closed = 255.0 - closing(gray, MARK_CELLS * cell | 1)
    background = regrow(negative, closed, MARK_TOL * level, shadows_only=False)
    closed = 255.0 - background[outside]
    marks = np.count_nonzero((surround < level - step) & (surround < closed - step))
    if marks <= MARK_LIMIT * surround.size:
        return False
    # Paper in a shadow is as smooth as the lit paper; wood grain, carpet, stone are not.
    inside = gray[top:bottom, left:right]
    return _roughness(gray, outside) <= SMOOTH_RATIO * _roughness(inside, None) + SMOOTH_SLACK


def _roughness(values: np.ndarray, where: np.ndarray | None) -> float:
    """Median absolute difference of adjacent pixels (where ``where`` holds), along rows
    or along columns, whichever is more: grain running along the rows is rough across."""
    return max(_steps(values, where), _steps(values.T, None if where is None else where.T))


def _steps(values: np.ndarray, where: np.ndarray | None) -> float:
    """Median absolute difference of horizontally adjacent pixels (where ``where`` holds)."""
    steps = np.abs(values[:, 1:] - values[:, :-1])
    if where is not None:
        steps = steps[where[:, 1:] & where[:, :-1]]
    return float(np.median(steps)) if steps.size else 0.0


def is_drawing(gray: np.ndarray) -> bool:
    """Whether the border is a drawing's canvas: uniform (p90 - p10) and pure black or white.

    A uniform border alone is no proof: a sheet on a plain table, photographed with
    the noise smoothed away (phones do) and JPEG-compressed, has one too; but a
    table is not exactly black or white.
    """
    p10, p50, p90 = np.percentile(border_pixels(gray), (10, 50, 90))
    pure = p50 <= PURE_LEVEL or p50 >= 255.0 - PURE_LEVEL
    return bool(p90 - p10 <= DRAWN_BORDER and pure)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold: the grey level that best splits ``values`` into two classes."""
    counts, edges = np.histogram(values, bins=64, range=(0.0, 256.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    total = weight[-1]
    mass = np.cumsum(counts * centres)
    below, above = weight[:-1], total - weight[:-1]
    valid = (below > 0) & (above > 0)
    mean_below = np.divide(mass[:-1], below, out=np.zeros_like(mass[:-1]), where=valid)
    mean_above = np.divide(mass[-1] - mass[:-1], above, out=np.zeros_like(mass[:-1]), where=valid)
    between = np.where(valid, below * above * (mean_below - mean_above) ** 2, -1.0)
    return float(edges[1:][int(np.argmax(between))])
