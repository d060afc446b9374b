"""Image bytes -> the digit model's input tensor, following MNIST's own procedure.

Pure Python + numpy + Pillow (no web framework, no torch), shared by the service and
the tests::

    spec = ImageSpec.from_metadata(metadata["input"]["preprocessing"])
    x = preprocess_image(data, spec, max_pixels=25_000_000)   # float32 (1, 784)

The procedure (details in ``service.imaging``):

1. decode any format Pillow reads safely, any size and mode, first frame only; apply
   the EXIF orientation; transparency counts as background; convert to grayscale;
   shrink large images while decoding (JPEG DCT scaling, then box reduction);
2. in a photo of a sheet of paper lying on a table (darker, or evenly lighter), keep
   only the sheet (``service.imaging.sheet``), and divide hard shadows out
   (``service.imaging.flatten``; ``paper_of`` says in which order); remove the
   background (flat, or a smooth surface for photos) and ruled lines at the sheet's
   tilt, invert a dark digit on a light background, floor the noise and stretch the
   contrast;
3. crop to the ink's bounding box (ignoring specks), thicken pen-thin strokes, scale
   the longer side to ``fit_box`` (antialiased), paste into the canvas so the centre
   of mass is in the middle, normalise with the model's mean and std.

Errors are the domain errors of ``service.errors``: ``EmptyInput`` (no bytes),
``InvalidImage`` (not an image, corrupt, truncated), ``PayloadTooLarge`` (over the
pixel limit, judged from the header before any pixel is decoded) and ``NoDigitFound``
(nothing on the image). No other exception escapes for any byte string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import EmptyInput
from service.imaging.box import fringe, ink_box
from service.imaging.canonical import canonical_canvas
from service.imaging.decode import decode_gray
from service.imaging.edges import shadow_edges
from service.imaging.flatten import crossing, flatten_shadows
from service.imaging.geometry import fit_patch, place_by_mass
from service.imaging.ink import ink_image
from service.imaging.levels import NO_DIGIT
from service.imaging.sheet import is_drawing, isolate_sheet, locate_sheet

__all__ = ["NO_DIGIT", "ImageSpec", "canvas_from_gray", "preprocess_image", "to_canvas"]


@dataclass(frozen=True)
class ImageSpec:
    """Geometry and normalisation of the model input (``input.preprocessing``)."""

    height: int = 28
    width: int = 28
    fit_box: int = 20
    mean: float = 0.1307
    std: float = 0.3081
    _table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("height", "width", "fit_box"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.fit_box > min(self.height, self.width):
            raise ValueError("fit_box must not exceed the canvas height or width")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError("mean must be finite and std finite and positive")
        # grey level (uint8) -> normalised float32, so normalising is one table lookup
        table = (np.arange(256, dtype=np.float64) / 255.0 - self.mean) / self.std
        table = table.astype(np.float32)
        table.flags.writeable = False
        object.__setattr__(self, "_table", table)

    @classmethod
    def from_metadata(cls, preprocessing: dict[str, Any]) -> ImageSpec:
        """Build from a model's ``metadata["input"]["preprocessing"]``; ``ValueError`` if bad."""
        if not isinstance(preprocessing, dict):
            raise ValueError("image preprocessing metadata must be an object")
        try:
            return cls(
                height=_whole(preprocessing["height"], "height"),
                width=_whole(preprocessing["width"], "width"),
                fit_box=_whole(preprocessing.get("fit_box", 20), "fit_box"),
                mean=_real(preprocessing["mean"], "mean"),
                std=_real(preprocessing["std"], "std"),
            )
        except KeyError as exc:
            raise ValueError(f"image preprocessing metadata lacks {exc}") from exc

    def normalize(self, canvas: np.ndarray) -> np.ndarray:
        """uint8 canvas -> float32 ``(1, height * width)``, C-contiguous."""
        return self._table[canvas.reshape(1, -1)]

    def denormalize(self, rows: np.ndarray) -> np.ndarray:
        """Normalised rows (``[n, height * width]``, or one row) back to the uint8
        ``[n, height, width]`` canvases they were made from, exactly: the normalisation
        is a strictly increasing table of the 256 grey levels."""
        levels = np.rint((rows.astype(np.float64) * self.std + self.mean) * 255.0)
        return np.clip(levels, 0, 255).astype(np.uint8).reshape(-1, self.height, self.width)


def _whole(value: object, name: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def to_canvas(data: bytes, spec: ImageSpec, max_pixels: int) -> np.ndarray:
    """Image bytes -> the uint8 ``(height, width)`` canvas, light digit on black."""
    if not data:
        raise EmptyInput("empty image")
    gray = decode_gray(data, max_pixels)
    canvas = canonical_canvas(gray, spec.height, spec.width, spec.fit_box)
    if canvas is not None:
        return canvas  # already a canvas (an MNIST crop): nothing to redo
    return canvas_from_gray(gray, spec)


def canvas_from_gray(gray: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """The full procedure on decoded grey levels: sheet, ink, box, fit, centre by mass."""
    ink = ink_image(paper_of(gray))
    box = ink_box(ink)
    top, bottom, left, right = fringe(ink, box)  # all the ink, for the centre of mass
    longest = max(box[1] - box[0], box[3] - box[2])
    patch = fit_patch(ink[top:bottom, left:right], longest, spec.fit_box)
    return place_by_mass(patch, spec.height, spec.width)


def paper_of(gray: np.ndarray) -> np.ndarray:
    """The sheet of paper in a photo (or the whole image), its hard shadows divided out.

    A shadow can hide a sheet on a table from the sheet search: where none is found,
    every shadow edge is divided out and the sheet looked for again. A shadow across
    the middle of a sheet that is found (it may have painted stripes of shadow into
    the crop) is divided out first and the sheet looked for again. The sheet's own
    sides look like shadow edges (straight steps by a factor) and stay, so the table
    is still cropped off, not lifted to the paper's level with its noise amplified.
    Last, the shadows inside the cropped sheet are divided out. A drawing (a web
    canvas: a pure black or white border) has no shadows and no sheet, and is left as
    it is.
    """
    if is_drawing(gray):
        return gray
    edges = shadow_edges(gray)
    found = locate_sheet(gray)
    if found is None:
        return isolate_sheet(flatten_shadows(gray, edges)) if edges else gray
    across = crossing(edges, found[1])
    if across:
        again = locate_sheet(flatten_shadows(gray, across))
        if again is not None:
            found = again
    return flatten_shadows(found[0])


def preprocess_image(data: bytes, spec: ImageSpec, *, max_pixels: int) -> np.ndarray:
    """Image bytes -> normalised float32 ``(1, height * width)``, C-contiguous."""
    return spec.normalize(to_canvas(data, spec, max_pixels))
