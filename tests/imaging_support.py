"""Helpers shared by the image preprocessing tests: encoding, and EXIF storage."""

from __future__ import annotations

import io
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFilter, ImageFont

EXIF_STORAGE = {  # orientation tag -> how a camera stores an upright scene
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def encode(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    """``image`` saved as ``fmt`` (Pillow's save options), in memory."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --- synthetic photos of paper (tests/test_photos.py) ------------------------------------
#
# Scenes are rendered at a base size (longer side 1000 px) in luminance, the only channel
# the service decodes, then resized to the upload size and JPEG-encoded. A sheet is a
# homography of a paper canvas into the frame; everything on it (rules, grid, the digit)
# is sampled at the paper coordinates of each frame pixel, so tilt and perspective are
# exact. Colours are given as luminance (Rec. 601) of typical RGB colours.

BASE_SIDE = 1000
PENS = {  # luminance of the ink, as a share of white
    "black": 0.11,
    "blue": 0.2,
    "navy": 0.13,
    "red": 0.3,
    "green": 0.28,
}
PHOTO_FAMILIES = (
    "table-flat",
    "table-textured",
    "hard-shadow",
    "ruled",
    "grid",
    "full-frame",
)


def digit_coverage(
    digit: np.ndarray, size: int, rng: np.random.Generator, min_stroke: float = 0.0
) -> np.ndarray:
    """Ink coverage [0, 1] of an MNIST digit upscaled to ``size`` px, a random pen width.

    The bicubic upscale is thresholded and smoothed (a felt-tip's crisp edge); a
    ballpoint is the same stroke eroded to a third to a half of its width, but not
    under ``min_stroke`` px (what the photo can still resolve).
    """
    up = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    level = rng.uniform(0.2, 0.45)
    cover = np.clip((np.asarray(up, dtype=np.float32) / 255.0 - level) / 0.2, 0.0, 1.0)
    stroke = 2.4 * size / 28  # MNIST strokes are about 2.4 px wide
    if rng.random() < 0.5:  # a ballpoint or fine-liner
        shrink = int(min(stroke * rng.uniform(0.5, 0.65), stroke - min_stroke)) // 2 * 2 + 1
        if shrink >= 3:
            cover = _min_filter((cover * 255).astype(np.uint8), shrink).astype(np.float32) / 255.0
    return cover


def _min_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Pillow's ``ImageFilter.MinFilter(size)`` (edges replicated), exactly, but
    separably: a square window's minimum is the minimum over its rows' minima."""
    half = size // 2
    padded = np.pad(image, half, mode="edge")
    rows = sliding_window_view(padded, size, axis=1).min(axis=-1)
    return sliding_window_view(rows, size, axis=0).min(axis=-1)


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 matrix mapping the four ``src`` points (x, y) to ``dst``."""
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    solution = np.linalg.solve(np.array(rows, float), np.asarray(dst, float).reshape(-1))
    return np.append(solution, 1.0).reshape(3, 3)


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at float coordinates; 0 outside (worked out
    only where a sample can touch the image)."""
    height, width = image.shape
    near = (ys > -1) & (ys < height) & (xs > -1) & (xs < width)
    result = np.zeros(ys.shape, dtype=np.float32)
    result[near] = _bilinear(image, ys[near], xs[near])
    return result


def _bilinear(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at float coordinates, 0 beyond its edges."""
    height, width = image.shape
    y0, x0 = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
    fy, fx = (ys - y0).astype(np.float32), (xs - x0).astype(np.float32)
    padded = np.pad(image, 1)
    y0c, x0c = np.clip(y0 + 1, 0, height + 1), np.clip(x0 + 1, 0, width + 1)
    y1c, x1c = np.clip(y0 + 2, 0, height + 1), np.clip(x0 + 2, 0, width + 1)
    top = padded[y0c, x0c] * (1 - fx) + padded[y0c, x1c] * fx
    bottom = padded[y1c, x0c] * (1 - fx) + padded[y1c, x1c] * fx
    return top * (1 - fy) + bottom * fy


def _lines(position: np.ndarray, spacing: float, offset: float, width: float) -> np.ndarray:
    """Antialiased coverage of lines ``width`` px wide every ``spacing`` px."""
    distance = np.abs((position - offset + spacing / 2) % spacing - spacing / 2)
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)


def _smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a few random values, bicubically upscaled."""
    small = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    image = Image.fromarray(small).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def wood(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Wood grain (reflectance): fine dark grain lines, warped, in a random direction,
    with plank seams sometimes; or a coarse fabric/stone texture."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.2, 0.6)
    if rng.random() < 0.25:  # stone / carpet: blotchy, speckled
        blotch = _smooth_noise(shape, int(rng.integers(8, 30)), rng)
        speck = rng.standard_normal(shape).astype(np.float32)
        return np.clip(base * (1 + 0.25 * blotch + 0.12 * speck), 0.02, 1.0)
    angle = rng.uniform(0, math.pi)
    along = xs * math.cos(angle) + ys * math.sin(angle)
    across = -xs * math.sin(angle) + ys * math.cos(angle)
    warp = _smooth_noise(shape, 6, rng) * rng.uniform(10, 40)
    period = rng.uniform(6, 25)
    phase = (across + warp + 0.02 * along) / period
    grain = 0.5 + 0.5 * np.cos(2 * math.pi * phase)
    dark = grain ** rng.uniform(4, 12)  # thin dark lines
    value = base * (1 - rng.uniform(0.3, 0.6) * dark) * (1 + 0.1 * _smooth_noise(shape, 12, rng))
    if rng.random() < 0.5:  # plank seams
        seams = _lines(across, rng.uniform(120, 300), rng.uniform(0, 100), rng.uniform(2, 4))
        value = value * (1 - 0.7 * seams)
    return np.clip(value, 0.02, 1.0)


def photo_of_paper(
    family: str, digit: np.ndarray | None, rng: np.random.Generator, *, side: int | None = None
) -> bytes:
    """A JPEG photo of a sheet of paper with ``digit`` (MNIST, 28x28) written on it.

    ``family`` is one of ``PHOTO_FAMILIES``; ``digit`` None leaves the sheet blank.
    ``side`` is the upload's longer side (random in 1000-4000 px by default).
    """
    portrait = rng.random() < 0.5
    height, width = (BASE_SIDE, 750) if portrait else (750, BASE_SIDE)
    full = family == "full-frame" or (
        family in ("ruled", "grid", "hard-shadow") and rng.random() < 0.4
    )
    sheet_portrait = rng.random() < 0.7 if portrait else rng.random() < 0.3
    ph, pw = (1414.0, 1000.0) if sheet_portrait else (1000.0, 1414.0)  # A4 paper canvas
    angle = math.radians(rng.uniform(-8, 8))
    if full:  # the page fills the frame: a little larger than it, hardly tilted
        angle = math.radians(rng.uniform(-3, 3))
        scale = max(height / ph, width / pw) * rng.uniform(1.08, 1.3)
        centre = (height / 2 + rng.uniform(-0.05, 0.05) * height, width / 2)
        centre = (centre[0], width / 2 + rng.uniform(-0.05, 0.05) * width)
    elif family == "table-textured":
        # table at one or more edges: the sheet runs past the frame on the others
        share = rng.uniform(0.45, 0.95)
        scale = math.sqrt(share * height * width / (ph * pw))
        centre = (height / 2, width / 2)
        sides = rng.permutation(4)[: int(rng.integers(1, 5))]
        shift = [0.0, 0.0]
        for s in sides:  # 0 top, 1 bottom, 2 left, 3 right: table shows on that side
            axis, sign = (0, 1) if s == 0 else (0, -1) if s == 1 else (1, 1) if s == 2 else (1, -1)
            shift[axis] += sign * rng.uniform(0.04, 0.15) * (height, width)[axis]
        centre = (centre[0] + shift[0], centre[1] + shift[1])
        scale = max(scale, 1.05 * max(height / ph, width / pw) * (1 - 0.1 * len(sides)))
    else:
        share = rng.uniform(0.3, 0.85)  # share of the frame the sheet covers
        scale = math.sqrt(share * height * width / (ph * pw))
        scale = min(scale, 0.95 * height / (ph * abs(math.cos(angle)) + pw * abs(math.sin(angle))))
        scale = min(scale, 0.95 * width / (pw * abs(math.cos(angle)) + ph * abs(math.sin(angle))))
        room_y = max(height - ph * scale, 0) / 2
        room_x = max(width - pw * scale, 0) / 2
        centre = (
            height / 2 + rng.uniform(-0.6, 0.6) * room_y,
            width / 2 + rng.uniform(-0.6, 0.6) * room_x,
        )
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], float)
    cos, sin = math.cos(angle), math.sin(angle)
    local = (corners - (pw / 2, ph / 2)) * scale
    dst = np.stack(
        [local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos], 1
    )
    dst += (centre[1], centre[0])
    if rng.random() < 0.5:  # perspective: the far edge a little narrower
        squeeze = rng.uniform(0.0, 0.08) * scale * pw
        dst[0, 0] += squeeze
        dst[1, 0] -= squeeze
    inverse = np.linalg.inv(_homography(corners, dst))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    denominator = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    u = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) / denominator
    v = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) / denominator
    pixel = 1.0 / scale  # one frame pixel in paper units
    inside = np.clip(np.minimum.reduce([u, pw - u, v, ph - v]) / pixel + 0.5, 0.0, 1.0)

    paper = rng.uniform(0.78, 0.95)
    reflectance = np.full((height, width), paper, np.float32)
    if family == "ruled":
        spacing = rng.uniform(30, 45)  # 8 mm on A4 ~ 38 units
        rule = _lines(v, spacing, rng.uniform(0, spacing), max(rng.uniform(1.0, 3.0), pixel))
        rule *= min(1.0, rng.uniform(1.0, 3.0) / pixel) if pixel > 3 else 1.0
        shade = rng.uniform(0.6, 0.85)  # light blue or grey lines
        reflectance *= 1 - (1 - shade) * rule
        if rng.random() < 0.5:  # a red margin line
            margin = _lines(u, 1e9, rng.uniform(90, 140), max(2.0, pixel))
            reflectance *= 1 - 0.35 * margin
    elif family == "grid":
        spacing = rng.uniform(17, 30)  # 5 mm squares ~ 24 units
        width_ = max(rng.uniform(1.0, 2.5), pixel)
        shade = rng.uniform(0.65, 0.88)
        grid = np.maximum(
            _lines(v, spacing, rng.uniform(0, spacing), width_),
            _lines(u, spacing, rng.uniform(0, spacing), width_),
        )
        reflectance *= 1 - (1 - shade) * grid
    if digit is not None:
        # the digit on the visible part of the sheet, 25-55% of the visible shorter side
        seen = inside > 0.5
        lo_u, hi_u = np.percentile(u[seen], (2, 98))
        lo_v, hi_v = np.percentile(v[seen], (2, 98))
        # (at least 130 frame px: 35-65 px in the service's working image)
        size = int(rng.uniform(0.25, 0.55) * min(hi_u - lo_u, hi_v - lo_v))
        size = max(size, int(130 * pixel))
        top = rng.uniform(lo_v + 0.05 * size, max(hi_v - 1.05 * size, lo_v + 0.05 * size + 1))
        left = rng.uniform(lo_u + 0.05 * size, max(hi_u - 1.05 * size, lo_u + 0.05 * size + 1))
        cover = digit_coverage(digit, size, rng, min_stroke=5 * pixel)
        ink = _sample(cover, v - top, u - left)
        pen_level = PENS[str(rng.choice(list(PENS)))] * rng.uniform(0.8, 1.3)
        reflectance = reflectance * (1 - ink) + pen_level * ink

    if family == "table-textured":
        table = wood((height, width), rng)
    elif rng.random() < 0.2:  # a table lighter than the paper (a white desk)
        table = np.full((height, width), min(paper * rng.uniform(1.05, 1.15), 0.99), np.float32)
    else:  # a uniform darker table, dark to nearly paper-light
        table = np.full((height, width), paper * rng.uniform(0.08, 0.75), np.float32)
    scene = table * (1 - inside) + reflectance * inside

    # light: a gradient and a vignette; for hard-shadow, a sharp-edged darker polygon
    ramp_angle = rng.uniform(0, 2 * math.pi)
    ramp = (xs / width - 0.5) * math.cos(ramp_angle) + (ys / height - 0.5) * math.sin(ramp_angle)
    even = rng.random() < 0.35  # even light, little noise (a denoised phone photo)
    light = rng.uniform(0.8, 1.05) + rng.uniform(0.0, 0.03 if even else 0.4) * ramp
    radius = ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2) * 2
    light *= 1 - rng.uniform(0.0, 0.03 if even else 0.3) * radius
    if family == "hard-shadow":
        seen = inside > 0.5
        points = np.argwhere(seen)[:: max(1, int(seen.sum()) // 4000)]
        # a polygon from a point outside, over part of the sheet (a hand, a phone)
        cy, cx = points[int(rng.integers(len(points)))]
        spread = rng.uniform(0.25, 0.6) * min(height, width)
        count = int(rng.integers(3, 6))
        turns = np.sort(rng.uniform(0, 2 * math.pi, count))
        polygon = [
            (
                float(cx + spread * rng.uniform(0.6, 1.6) * math.cos(t)),
                float(cy + spread * rng.uniform(0.6, 1.6) * math.sin(t)),
            )
            for t in turns
        ]
        mask = Image.new("L", (width * 2, height * 2), 0)
        ImageDraw.Draw(mask).polygon([(x * 2, y * 2) for x, y in polygon], fill=255)
        mask = mask.resize((width, height), Image.Resampling.BOX)
        if rng.random() < 0.5:  # a slightly soft edge (still hard: 1-3 px)
            mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        shadow = np.asarray(mask, dtype=np.float32) / 255.0
        light *= 1 - rng.uniform(0.3, 0.65) * shadow
    image = 255.0 * scene * light
    image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.standard_normal(pixels.shape, dtype=np.float32) * (
        rng.uniform(0.2, 1.0) if even else rng.uniform(0.5, 4.0)
    )
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    longest = side if side is not None else int(rng.integers(1000, 4001))
    if longest != BASE_SIDE:
        size = (round(width * longest / BASE_SIDE), round(height * longest / BASE_SIDE))
        image = image.resize(size, Image.Resampling.BILINEAR)
    return encode(image, "JPEG", quality=int(rng.integers(60, 95)))


# --- non-digits: faces, landscapes, lines of text, textures ------------------------------

NON_DIGITS = ("face", "landscape", "text", "texture")
WORDS = ("hello", "world", "Meeting at", "Total", "Dear Sam", "1984", "2025", "call 5551234")
WORDS += ("abc", "Notes", "x = 42", "Paris", "12 + 7", "the end", "314159", "OK")


def _finish(scene: np.ndarray, rng: np.random.Generator) -> bytes:
    """Reflectance [0, 1] -> a JPEG photo: light gradient, blur, noise, resize."""
    height, width = scene.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xs / width - 0.5) * math.cos(angle) + (ys / height - 0.5) * math.sin(angle)
    light = rng.uniform(0.85, 1.05) + rng.uniform(0.0, 0.3) * ramp
    image = Image.fromarray(np.clip(255 * scene * light, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    pixels = np.asarray(image, np.float32) + rng.standard_normal(scene.shape, np.float32) * 2
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    longest = int(rng.integers(600, 2500))
    image = image.resize((round(width * longest / 1000), round(height * longest / 1000)))
    return encode(image, "JPEG", quality=int(rng.integers(60, 95)))


def _ellipse(
    ys: np.ndarray, xs: np.ndarray, centre: tuple[float, float], radii: tuple[float, float]
) -> np.ndarray:
    """Squared normalised distance from the centre of an axis-aligned ellipse."""
    return ((ys - centre[0]) / radii[0]) ** 2 + ((xs - centre[1]) / radii[1]) ** 2


def non_digit(kind: str, rng: np.random.Generator) -> bytes:
    """A JPEG photo of something that is not a digit: ``kind`` in ``NON_DIGITS``."""
    height, width = (1000, 750) if rng.random() < 0.5 else (750, 1000)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "face":  # head, hair, eyes, brows, nose, mouth; shaded from one side
        back = rng.uniform(0.2, 0.9) + 0.1 * _smooth_noise((height, width), 4, rng)
        scene = back.astype(np.float32)
        cy, cx = height * rng.uniform(0.4, 0.6), width * rng.uniform(0.4, 0.6)
        ry = min(height, width) * rng.uniform(0.25, 0.42)
        rx = ry * rng.uniform(0.7, 0.85)
        skin = rng.uniform(0.35, 0.85)
        head = _ellipse(ys, xs, (cy, cx), (ry, rx))
        shade = 1 - 0.35 * np.clip((xs - cx) / rx * rng.choice([-1, 1]), -1, 1)
        scene = np.where(head < 1, skin * shade * (1 - 0.15 * head), scene)
        hair = (head < 1.15) & (ys < cy - ry * rng.uniform(0.45, 0.7))
        scene = np.where(hair, rng.uniform(0.05, 0.5), scene)
        for side in (-1, 1):
            eye = (cy - 0.15 * ry, cx + side * 0.38 * rx)
            scene = np.where(_ellipse(ys, xs, eye, (0.07 * ry, 0.14 * rx)) < 1, 0.95, scene)
            scene = np.where(_ellipse(ys, xs, eye, (0.06 * ry, 0.06 * rx)) < 1, 0.1, scene)
            brow = (eye[0] - 0.16 * ry, eye[1])
            scene = np.where(_ellipse(ys, xs, brow, (0.03 * ry, 0.18 * rx)) < 1, 0.15, scene)
        nose = _ellipse(ys, xs, (cy + 0.15 * ry, cx), (0.12 * ry, 0.06 * rx)) < 1
        scene = np.where(nose, scene * 0.8, scene)
        mouth = _ellipse(ys, xs, (cy + 0.5 * ry, cx), (0.08 * ry, 0.3 * rx))
        scene = np.where((mouth < 1) & (ys > cy + 0.48 * ry), skin * 0.4, scene)
    elif kind == "landscape":  # sky gradient, a sun, two or three hills, noise
        horizon = rng.uniform(0.3, 0.7) * height
        sky = rng.uniform(0.6, 0.95) - 0.3 * (1 - ys / horizon)
        scene = np.clip(sky, 0.2, 1.0).astype(np.float32)
        if rng.random() < 0.5:
            sun = _ellipse(
                ys, xs, (horizon * rng.uniform(0.2, 0.6), rng.uniform(0.1, 0.9) * width), (40, 40)
            )
            scene = np.where(sun < 1, 1.0, scene)
        for level in range(int(rng.integers(2, 4))):
            ridge = horizon + level * 0.12 * height
            ridge = ridge + rng.uniform(20, 90) * np.sin(
                xs / rng.uniform(80, 300) + rng.uniform(0, 6)
            )
            tone = rng.uniform(0.15, 0.6) * (1 + 0.15 * _smooth_noise((height, width), 20, rng))
            scene = np.where(ys > ridge, tone, scene)
        scene = scene * (1 + 0.08 * rng.standard_normal(scene.shape).astype(np.float32))
    elif kind == "text":  # a line of words (or digits) on paper, PIL's font
        scene = np.full((height, width), rng.uniform(0.8, 0.95), np.float32)
        text = " ".join(str(w) for w in rng.choice(WORDS, size=int(rng.integers(1, 4))))
        size = int(rng.uniform(0.06, 0.14) * min(height, width))
        font = ImageFont.load_default(size=size)
        layer = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(layer)
        left, top, right, _ = draw.textbbox((0, 0), text, font=font)
        if right - left > 0.95 * width:  # too long for the page: smaller
            font = ImageFont.load_default(size=int(size * 0.9 * width / (right - left)))
            left, top, right, _ = draw.textbbox((0, 0), text, font=font)
        x = rng.uniform(0, max(width - (right - left), 1)) - left
        y = rng.uniform(0.1, 0.8) * height - top
        draw.text((x, y), text, fill=255, font=font, stroke_width=int(rng.integers(0, 3)))
        cover = np.asarray(layer, np.float32) / 255.0
        scene = scene * (1 - cover) + PENS[str(rng.choice(list(PENS)))] * cover
    else:  # a texture: wood, stone, fabric, or blank paper
        scene = (
            wood((height, width), rng)
            if rng.random() < 0.7
            else np.full((height, width), rng.uniform(0.7, 0.95), np.float32)
            * (1 + 0.03 * _smooth_noise((height, width), 10, rng))
        )
    return _finish(scene.astype(np.float32), rng)
