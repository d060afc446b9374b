"""Evaluation families: digits unlike MNIST's scans, rendered as real image files.

Every family starts from MNIST *test* digits (never the training images), chosen and
transformed deterministically from a seed, and renders each one as the bytes a client
would upload (PNG or JPEG, dark pen on light paper unless said otherwise, larger than
28x28). The service's own preprocessing (``service.imaging.pipeline.preprocess_image``)
turns them into the model's input, so a family measures the model *and* the pipeline,
as users meet them.

The digit is first drawn large: the 28x28 test image upscaled ``UPSCALE`` times
(bicubic), which smooths MNIST's pixels into strokes. Then each family changes one
thing: stroke width, resolution, blur, slant and rotation, colours, placement in a
large image, or JPEG compression.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from training.digit.data.mnist import locate, read_idx

UPSCALE = 4  # the "pen" drawing: 112x112 px for a 28x28 MNIST digit
DEFAULT_COUNT = 1000
DEFAULT_SEED = 2026


@dataclass(frozen=True)
class Family:
    """A named way of rendering a digit; ``bar`` is False for the ones reported only."""

    name: str
    description: str
    render: Callable[[np.ndarray, np.random.Generator], bytes]
    bar: bool = True


def _large(digit: np.ndarray, scale: int = UPSCALE) -> Image.Image:
    """The 28x28 light-on-dark uint8 digit as a ``scale``-times larger grey image."""
    image = Image.fromarray(digit, mode="L")
    return image.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)


def _on_paper(ink: Image.Image) -> Image.Image:
    """Light-on-dark ink -> dark pen on white paper."""
    return Image.fromarray(255 - np.asarray(ink), mode="L")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _ink_height(ink: Image.Image) -> int:
    rows = np.flatnonzero(np.asarray(ink).max(axis=1) > 0.2 * 255)
    return int(rows[-1] - rows[0] + 1) if len(rows) else ink.height


def render_clean(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _png(_on_paper(_large(digit)))


def render_thick(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Strokes thickened by a max filter 9-13 px wide at 4x: about 2-3 MNIST pixels more."""
    size = int(rng.choice([9, 11, 13]))
    return _png(_on_paper(_large(digit).filter(ImageFilter.MaxFilter(size))))


def render_thin(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Strokes thinned by a min filter 5-7 px wide at 4x: a fine pen line."""
    size = int(rng.choice([5, 7]))
    thin = _large(digit).filter(ImageFilter.MinFilter(size))
    if np.asarray(thin).max() < 128:  # a digit too thin to survive: thin it less
        thin = _large(digit).filter(ImageFilter.MinFilter(3))
    return _png(_on_paper(thin))


def _low_resolution(digit: np.ndarray, rng: np.random.Generator, low: int, high: int) -> bytes:
    """The digit drawn ``low``-``high`` px tall, then scaled up 8x: blocky (nearest) for
    half the images, blurry (bilinear) for the others."""
    large = _large(digit)
    target = int(rng.integers(low, high + 1))
    factor = target / _ink_height(large)
    side = max(4, round(large.width * factor))
    small = large.resize((side, side), Image.Resampling.LANCZOS)
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return _png(_on_paper(small.resize((side * 8, side * 8), resample)))


def render_lowres(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _low_resolution(digit, rng, 10, 16)


def render_lowres8(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return _low_resolution(digit, rng, 8, 8)


def render_blur(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Gaussian blur of radius 4-8 px at 4x (1-2 MNIST pixels): out of focus."""
    radius = float(rng.uniform(4.0, 8.0))
    return _png(_on_paper(_large(digit).filter(ImageFilter.GaussianBlur(radius))))


def render_rotate(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Rotated by up to ±15° and slanted (sheared) by up to ±15°."""
    large = _large(digit)
    pad = Image.new("L", (large.width * 2, large.height * 2))
    pad.paste(large, (large.width // 2, large.height // 2))
    shear = float(np.tan(np.radians(rng.uniform(-15.0, 15.0))))
    centre = pad.width / 2
    slanted = pad.transform(
        pad.size,
        Image.Transform.AFFINE,
        (1.0, shear, -shear * centre, 0.0, 1.0, 0.0),
        resample=Image.Resampling.BICUBIC,
    )
    rotated = slanted.rotate(float(rng.uniform(-15.0, 15.0)), Image.Resampling.BICUBIC)
    return _png(_on_paper(rotated))


def render_colour(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A coloured pen (blue, red, green, violet) on tinted paper (cream, blue, pink,
    green, grey), with a little paper grain; RGB PNG."""
    pens = np.array([[30, 60, 170], [190, 30, 30], [20, 120, 50], [110, 40, 140]], float)
    papers = np.array(
        [[250, 240, 205], [215, 230, 250], [250, 220, 225], [220, 240, 215], [225, 225, 225]],
        float,
    )
    pen = pens[rng.integers(len(pens))]
    paper = papers[rng.integers(len(papers))]
    ink = np.asarray(_large(digit), dtype=float)[..., None] / 255.0
    rgb = paper * (1.0 - ink) + pen * ink
    rgb += rng.normal(0.0, 3.0, rgb.shape)
    return _png(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB"))


def render_offcentre(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small digit (ink 30-50 px tall) anywhere in a 480x360 sheet of paper."""
    large = _large(digit)
    height = int(rng.integers(30, 51))
    side = max(8, round(large.width * height / _ink_height(large)))
    small = large.resize((side, side), Image.Resampling.LANCZOS)
    sheet = Image.new("L", (480, 360))
    x = int(rng.integers(0, sheet.width - side))
    y = int(rng.integers(0, sheet.height - side))
    sheet.paste(small, (x, y))
    return _png(_on_paper(sheet))


def render_jpeg60(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark on white at 2x (56x56 px), JPEG quality 60."""
    return _jpeg(_on_paper(_large(digit, 2)), 60)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("clean", "MNIST test digit drawn 4x larger (112 px), dark on white", render_clean),
        Family("thick", "strokes about 2-3 px thicker (max filter)", render_thick),
        Family("thin", "fine pen strokes (min filter)", render_thin),
        Family(
            "lowres-10-16", "drawn 10-16 px tall, scaled up 8x, blocky or blurry", render_lowres
        ),
        Family(
            "lowres-8", "drawn 8 px tall, scaled up 8x, blocky or blurry", render_lowres8, False
        ),
        Family("blur", "Gaussian blur, sigma 1-2 MNIST px", render_blur),
        Family("rotate-slant", "rotation and slant, each up to ±15°", render_rotate),
        Family("colour", "coloured pen on tinted paper, RGB", render_colour),
        Family("off-centre", "30-50 px tall, anywhere on a 480x360 sheet", render_offcentre),
        Family("jpeg-q60", "dark on white, 56x56 px, JPEG quality 60", render_jpeg60),
    )
}


def mnist_test(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images (uint8 [10000, 28, 28]) and labels, never downloaded."""
    paths = locate(data_dir, download=False)
    images = read_idx(paths["test_images"]).numpy()
    labels = read_idx(paths["test_labels"]).numpy()
    return images, labels


def sample(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
) -> tuple[list[bytes], np.ndarray]:
    """``count`` test digits rendered by family ``name``: (image files, labels).

    Deterministic: the digits (the same ones for every family) and every random choice
    of the rendering come from ``seed``.
    """
    family = FAMILIES[name]
    chosen = np.random.default_rng(seed).permutation(len(labels))[:count]
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(name)])
    files = [family.render(images[i], rng) for i in chosen]
    return files, labels[chosen].astype(np.int64)
