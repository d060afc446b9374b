"""The bounding box of the ink: clearly-inked pixels, specks left out, fringe taken in.

Specks are row and column runs cut off from the digit by empty lines that hold
under 2% of its ink or never get to half its brightness (dust, noise, a shadow's
edge). The faint antialiased fringe touching the box is then taken in.
"""

from __future__ import annotations

import numpy as np

from service.errors import NoDigitFound
from service.imaging.levels import BOX_LEVEL, NO_DIGIT, STROKE_PEAK

FRINGE_LEVEL = 8.0  # ... and for the faint fringe around it (above JPEG's ringing)
SPECK_MASS = 0.02  # detached runs holding less of the ink than this are specks
MIN_DIGIT = 3  # the ink box's longer side must be at least this many pixels
MIN_DIGIT_SHARE = 0.02  # ... and this share of the image's longer side
EDGE_SLACK = 0.02  # a run this close to the image's edge (share of its side) runs off it
EDGE_WIDTH = 0.08  # ... and is a page's or table's edge if no wider than this share
EDGE_LENGTH = 0.7  # ... and not the heaviest run, or this share of the box long along the frame


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` (half-open) of the ink, specks left out.

    The box holds the clearly-inked pixels and the fringe touching them above
    ``FRINGE_LEVEL`` (JPEG's ringing stays out); ``fringe`` widens it to all the ink.
    """
    mass = np.where(ink > BOX_LEVEL, ink, 0.0)
    top, bottom, left, right = 0, ink.shape[0], 0, ink.shape[1]
    height, width = ink.shape
    for _ in range(4):  # dropping a row speck can uncover a column speck, and so on
        box = mass[top:bottom, left:right]
        start, stop, rows_cut = _main_run(box, axis=1, framed=(top == 0, bottom == height))
        first, last, cols_cut = _main_run(box, axis=0, framed=(left == 0, right == width))
        top, bottom, left, right = top + start, top + stop, left + first, left + last
        if not (rows_cut or cols_cut):
            break
    if max(bottom - top, right - left) < max(MIN_DIGIT, MIN_DIGIT_SHARE * max(ink.shape)):
        raise NoDigitFound(NO_DIGIT)  # nothing, or a dot: not a digit
    return fringe(ink, (top, bottom, left, right), FRINGE_LEVEL)


def fringe(
    ink: np.ndarray, box: tuple[int, int, int, int], level: float = 0.0
) -> tuple[int, int, int, int]:
    """``box`` grown by the lines next to it holding ink over ``level``, a few at most."""
    top, bottom, left, right = box
    reach = max(1, max(bottom - top, right - left) // 10)
    inked = ink > level
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


def _main_run(
    box: np.ndarray, axis: int, framed: tuple[bool, bool] = (False, False)
) -> tuple[int, int, bool]:
    """Span of the non-speck runs of inked lines along ``axis``, and whether specks were cut.

    A run is a speck if it holds under ``SPECK_MASS`` of the ink, or if it never gets
    to half the full ink level (a shadow's edge, paper texture; strokes always do), or
    if it is a narrow run off the image (``framed``: whether the box's first and last
    lines are the image's) and not the heaviest, or ``EDGE_LENGTH`` of the box long
    along the frame (a digit seldom is, next to other ink): the edge of a page or a
    strip of table at the frame, cut off from the digit by clean paper.
    """
    profile = box.sum(axis=axis)
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
    run_peak = np.maximum.reduceat(box.max(axis=axis), starts)
    slack = EDGE_SLACK * profile.size  # (a sheet's edge may end a pixel or two inside)
    at_edge = ((starts <= slack) & framed[0]) | ((stops >= profile.size - slack) & framed[1])
    narrow = stops - starts <= EDGE_WIDTH * profile.size
    off_frame = at_edge & narrow & (run_mass < run_mass.max())
    for run in np.flatnonzero(at_edge & narrow & ~off_frame):  # at most two: one an end
        lines = np.take(box, np.arange(starts[run], stops[run]), axis=1 - axis)
        length = np.count_nonzero(lines.any(axis=1 - axis))
        off_frame[run] = length >= EDGE_LENGTH * box.shape[axis]
    strong = (run_mass >= SPECK_MASS * cumulative[-1]) & (run_peak >= STROKE_PEAK)
    keep = np.flatnonzero(strong & ~off_frame)
    if keep.size == 0:
        keep = np.array([int(np.argmax(run_mass))])
    start, stop = int(starts[keep[0]]), int(stops[keep[-1]])
    return start, stop, (start, stop) != (first, last)
