"""Hard shadows divided out of a photo of paper, by reintegrating its log image
without their edges.

A hard shadow multiplies the light by one factor over a region bounded by long
straight edges (``service.imaging.edges``). In the log image it is a constant offset
whose gradient is zero everywhere but on those edges. So the shadow's field is what
the log image's gradient integrates to *on the edges alone*: the image's log
gradient is kept everywhere but in a narrow band along each shadow edge, where it is
set to zero, and the log image is rebuilt from that field by solving Poisson's
equation (least squares, Neumann boundary, exactly by FFT). The difference from
the original log image is the shadow's field: a step of the shadow's depth on each
edge, flat elsewhere. Where an edge was missed (a corner, a stroke crossing it), the
step leaks out smoothly around the gap, as a soft gradient, which the ink's smooth
background (``service.imaging.ink``) follows.

The digit's strokes are short or curved ridges, not long straight steps, and keep
their contrast (a stroke crossing an edge loses only the band's few pixels of its
own gradient, filled in from either side).

Cost: the edge search (``service.imaging.edges``), and where it finds an edge, one
real FFT and its inverse of twice the (at most 512 px) working image's size, about
20 ms.
"""

from __future__ import annotations

import numpy as np

from service.imaging.edges import ShadowEdge, shadow_edges
from service.imaging.sheet import Box

BAND = 3.0  # pixels either side of an edge whose gradient is the shadow's
REACH = 4.0  # ... and along the segment past its ends
LIT_QUANTILE = 98.0  # the lit level of the shadow field: a high quantile (not the max)
SIDE_ZONE = 0.2  # a tilted sheet's sides lie within this share of its box's size of it
CROSSING = 12  # pixels of an edge in the rest of the box: a shadow across the sheet
MAX_LIFT = 3.0  # the photo is brightened by at most e to this (20x) where divided


def flatten_shadows(gray: np.ndarray, edges: list[ShadowEdge] | None = None) -> np.ndarray:
    """``gray`` (paper: light is high) with its hard shadows divided out (those of
    ``edges``, if given; else all that ``shadow_edges`` finds); ``gray`` itself where
    there are none."""
    if edges is None:
        edges = shadow_edges(gray)
    if not edges:
        return gray
    band = _band(gray.shape, edges)
    log = np.log(np.maximum(gray, 1.0, dtype=np.float64))
    gx = np.diff(log, axis=1)
    gy = np.diff(log, axis=0)
    gx[band[:, 1:] | band[:, :-1]] = 0.0
    gy[band[1:] | band[:-1]] = 0.0
    rebuilt = _integrate(gx, gy)
    field = log - rebuilt
    lit = float(np.percentile(field[::2, ::2], LIT_QUANTILE))
    flat = gray * np.exp(np.minimum(lit - field, MAX_LIFT))
    return np.clip(flat, 0.0, 255.0).astype(np.float32)


def crossing(edges: list[ShadowEdge], box: Box) -> list[ShadowEdge]:
    """The edges that run through the middle of ``box`` (top, bottom, left, right) for
    ``CROSSING`` pixels or more: a shadow's across a sheet, not the sheet's own sides
    (which lie along the box's, a tilted sheet's within ``SIDE_ZONE`` of it). A shadow
    edge that bounds the box itself (a shadow hiding one side of the sheet, whose lit
    part alone was taken for it) looks like a side and is not among them."""
    top, bottom, left, right = box
    inner_y = SIDE_ZONE * (bottom - top)
    inner_x = SIDE_ZONE * (right - left)
    found = []
    for edge in edges:
        t = np.arange(edge.start, edge.stop, 1.0)
        x = edge.rho * edge.cos - t * edge.sin
        y = edge.rho * edge.sin + t * edge.cos
        inside = (y > top + inner_y) & (y < bottom - inner_y)
        inside &= (x > left + inner_x) & (x < right - inner_x)
        if np.count_nonzero(inside) >= CROSSING:
            found.append(edge)
    return found


def _band(shape: tuple[int, int], edges: list[ShadowEdge]) -> np.ndarray:
    """Bool mask of the pixels within ``BAND`` of any edge's segment."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    band = np.zeros(shape, dtype=bool)
    for edge in edges:
        across = xs * edge.cos + ys * edge.sin - edge.rho
        along = -xs * edge.sin + ys * edge.cos
        band |= (
            (np.abs(across) <= BAND) & (along >= edge.start - REACH) & (along <= edge.stop + REACH)
        )
    return band


def _integrate(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The least-squares image whose forward differences are ``gx`` (along rows) and
    ``gy`` (down columns): Poisson's equation with Neumann boundaries, solved on the
    image mirrored both ways (periodic, so exactly by FFT), mean zero."""
    height, width = gy.shape[0] + 1, gx.shape[1] + 1
    div = np.zeros((height, width))
    div[:, :-1] += gx
    div[:, 1:] -= gx
    div[:-1] += gy
    div[1:] -= gy
    mirrored = np.block([[div, div[:, ::-1]], [div[::-1], div[::-1, ::-1]]])
    spectrum = np.fft.rfft2(mirrored)
    ky = 2.0 * np.cos(np.pi * np.arange(2 * height) / height) - 2.0
    kx = 2.0 * np.cos(np.pi * np.arange(width + 1) / width) - 2.0
    eigen = ky[:, None] + kx[None, :]
    eigen[0, 0] = 1.0
    spectrum /= eigen
    spectrum[0, 0] = 0.0
    return np.fft.irfft2(spectrum, s=mirrored.shape)[:height, :width]
