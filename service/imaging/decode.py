"""Decode untrusted image bytes into a small float32 grayscale working image.

Everything here maps failures to the domain errors of ``service.errors``: no other
exception escapes for any byte string. Pillow's globals (``MAX_IMAGE_PIXELS``,
``LOAD_TRUNCATED_IMAGES``, warning filters) are read, never changed.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from service.errors import InvalidImage, PayloadTooLarge, ServiceError

# Formats with a pure in-process decoder that clients plausibly send. EPS (runs
# Ghostscript), PDF, WMF, FITS and the other exotic plugins are deliberately not tried.
# ("JPEG" also opens MPO, the multi-picture JPEG some phone cameras write.)
# AVIF (some phones' camera format) where this Pillow has the codec: naming a
# format Pillow lacks would make every open fail.
FORMATS: tuple[str, ...] = (
    "PNG",
    "JPEG",
    "GIF",
    "BMP",
    "DIB",
    "WEBP",
    *(("AVIF",) if features.check("avif") else ()),
    "TIFF",
    "PPM",
)

# Longest side of the working image. Larger inputs are shrunk while decoding (JPEG
# DCT scaling by up to 1/8, to at least half this size) and right after it (box
# reduction), so a 12-Mpx photo costs about as much as a 0.2-Mpx one.
WORK_SIDE = 512

_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_HIGH_DEPTH = _SIXTEEN_BIT | {"I", "F"}


def pixel_limit(max_pixels: int) -> int:
    """The effective limit: ours, or Pillow's warning threshold if that is lower."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, int(pillow_limit))


def decode_gray(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode ``data`` into a float32 ``(H, W)`` array of grey levels in ``[0, 255]``.

    The result is at most ``WORK_SIDE`` pixels on its longer side, EXIF-oriented, with
    any transparent area composited over the background (see ``_flatten_alpha``).
    """
    try:
        im = _open(data, max_pixels)
        orientation = _orientation(im)
        im = _to_luminance(im)
        side = max(im.size)
        if side > WORK_SIDE:
            im = im.reduce(math.ceil(side / WORK_SIDE))
        method = _TRANSPOSE.get(orientation)
        if method is not None:
            im = im.transpose(method)
        pixels = np.asarray(im)
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge("image too large: over the pixel limit") from exc
    except MemoryError as exc:
        raise PayloadTooLarge("image too large to decode") from exc
    except Exception as exc:  # Pillow raises many types for corrupt data
        # Pillow's own text ("image file is truncated (3 bytes not processed)", codec
        # internals) stays out of the client's answer.
        raise InvalidImage("corrupt, truncated or unsupported image") from exc
    if pixels.ndim == 3:
        return _flatten_alpha(pixels[..., 0], pixels[..., 1])
    return pixels.astype(np.float32)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open, check the pixel count from the header, then decode (shrunk if JPEG)."""
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise InvalidImage("not an image, or an unsupported format") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        raise InvalidImage("image has no pixels")
    limit = pixel_limit(max_pixels)
    if width * height > limit:
        raise PayloadTooLarge(f"image has {width}x{height} pixels; the limit is {limit}")
    if im.format in ("JPEG", "MPO") and max(width, height) > WORK_SIDE:
        # DCT-domain downscaling by 1/2, 1/4 or 1/8 (never below the requested size),
        # and luma only: the colour planes of an RGB JPEG are not even decoded.
        ratio = WORK_SIDE / 2 / max(width, height)
        im.draft("L", (max(1, int(width * ratio)), max(1, int(height * ratio))))
    im.load()
    return im


def _orientation(im: Image.Image) -> int:
    """EXIF orientation (1..8) as ``ImageOps.exif_transpose`` reads it; 1 if unreadable."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block must not reject an otherwise fine image
        return 1
    return value if isinstance(value, int) else 1


def _to_luminance(im: Image.Image) -> Image.Image:
    """Any mode -> ``L``, or ``LA`` where the image carries transparency."""
    mode = im.mode
    if mode in _HIGH_DEPTH:
        return _high_depth_to_l(im)
    if im.has_transparency_data:
        if mode == "LA":
            return im
        if mode != "RGBA":
            im = im.convert("RGBA")
        return im.convert("LA")
    if mode == "L":
        return im
    try:
        return im.convert("L")
    except ValueError:  # e.g. LAB, HSV: no direct conversion to L
        return im.convert("RGB").convert("L")


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float images -> 8-bit ``L``.

    16-bit data is scaled by its full range (65535 -> 255). ``I`` and ``F`` have no
    fixed white level: values already in 0..255 (or 0..1 for floats) are kept, 0..65535
    is treated as 16-bit, anything else is stretched from its minimum to its maximum.
    """
    side = max(im.size)
    if side > WORK_SIDE:
        # Shrink first: the conversion below costs 4 bytes and several passes a pixel.
        factor = math.ceil(side / WORK_SIDE)
        size = (max(1, im.size[0] // factor), max(1, im.size[1] // factor))
        im = im.resize(size, Image.Resampling.BOX)
    values = np.asarray(im).astype(np.float32)
    if im.mode not in _SIXTEEN_BIT:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if im.mode in _SIXTEEN_BIT or (im.mode == "I" and low >= 0 and 255 < high <= 65535):
        values *= 255.0 / 65535.0
    elif im.mode == "F" and low >= 0 and high <= 1:
        values *= 255.0
    elif low < 0 or high > 255:
        values = (values - low) * (255.0 / max(high - low, 1e-12))
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8))


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite a grey+alpha image over the background it stands for.

    Transparency always counts as background. When the opaque pixels are a minority
    they are the strokes (a drawing on a transparent canvas): the transparent area
    becomes the opposite of the strokes' tone, so black and white strokes both work.
    Otherwise the opaque part already holds the background, and transparent holes
    take its typical (median) tone.
    """
    opaque = alpha > 127
    count = int(np.count_nonzero(opaque))
    if count == alpha.size and int(alpha.min()) == 255:
        return gray.astype(np.float32)
    tone = float(np.median(gray[opaque])) if count else 255.0
    strokes_only = count * 2 < alpha.size
    background = (255.0 if tone < 128 else 0.0) if strokes_only else tone
    a = alpha.astype(np.float32) * (1.0 / 255.0)
    return gray * a + background * (1.0 - a)
