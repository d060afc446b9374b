"""Preprocessing on real MNIST digits, judged by the committed digit model.

* MNIST test images, PNG-encoded, come through (nearly) bit-identical, and the model's
  accuracy on them through ``preprocess_image`` is within 0.3 points of its accuracy
  on the raw tensors.
* Realistic photos and drawings made from real MNIST digits (upscaled, dark on light
  paper, illumination gradients, shadows, noise, JPEG, off-centre, EXIF rotation,
  transparency, palettes, 16-bit, 12 Mpx) are still read right, with MNIST geometry.

Data: the shared ``mnist_dir`` fixture (``MNIST_DIR``, the torchvision root holding
``MNIST/raw``; missing data fails on CI and skips elsewhere). Model: the highest
committed version in ``models/digit``, verified against its metadata.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageDraw

from service.errors import NoDigitFound
from service.imaging.pipeline import ImageSpec, canvas_from_gray, preprocess_image, to_canvas
from service.models.repository import ModelVersion
from tests.conftest import load_mnist_test_set
from tests.imaging_support import EXIF_STORAGE, encode

LIMIT = 25_000_000


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set: uint8 images [10000, 28, 28] and labels [10000]."""
    return load_mnist_test_set(mnist_dir)


@dataclass(frozen=True)
class DigitModel:
    version: int
    spec: ImageSpec
    predict: Callable[[np.ndarray], np.ndarray]  # float32 [n, 784] -> labels [n]


@pytest.fixture(scope="module")
def model(committed_model: Callable[[str], ModelVersion]) -> DigitModel:
    """The committed digit model of the highest version, run by ONNX Runtime on the CPU."""
    version = committed_model("digit")
    metadata = version.metadata
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(
        str(version.artifact("onnx")), options, providers=["CPUExecutionProvider"]
    )
    input_name, output_name = metadata["input"]["name"], metadata["output"]["name"]

    def predict(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                session.run([output_name], {input_name: rows[i : i + 1000]})[0].argmax(axis=1)
                for i in range(0, len(rows), 1000)
            ]
        )

    spec = ImageSpec.from_metadata(metadata["input"]["preprocessing"])
    return DigitModel(version.version, spec, predict)


def png(image: np.ndarray | Image.Image) -> bytes:
    return encode(image, "PNG")


# --- MNIST itself ------------------------------------------------------------------------


def test_mnist_pngs_come_through_essentially_unchanged(mnist: tuple[np.ndarray, np.ndarray]):
    """Bit-identical but for the rare digit holding a speck or a pen-thin stroke.

    MNIST itself kept its specks inside the 20-px box (0.3% of the test set has one);
    here a detached run with under 2% of the ink is dropped, which rescales the digit.
    """
    images = mnist[0]
    spec = ImageSpec()
    canvases = np.stack([to_canvas(png(image), spec, LIMIT) for image in images])
    # The full procedure too, without the pass-through for ready-made canvases.
    full = np.stack([canvas_from_gray(image.astype(np.float32), spec) for image in images])
    for result in (canvases, full):
        diff = np.abs(result.astype(np.int16) - images).mean(axis=(1, 2))
        assert diff.mean() < 0.1, diff.mean()  # grey levels per pixel, of 255
        assert (diff == 0).mean() >= 0.98, (diff == 0).mean()
        assert (diff <= 1.0).mean() >= 0.995, (diff <= 1.0).mean()


def test_png_accuracy_matches_raw_tensor_accuracy(
    mnist: tuple[np.ndarray, np.ndarray], model: DigitModel
) -> None:
    images, labels = mnist
    spec = model.spec
    raw = (images.reshape(len(images), -1).astype(np.float32) / 255.0 - spec.mean) / spec.std
    raw_predictions = model.predict(raw)
    rows = [preprocess_image(png(image), spec, max_pixels=LIMIT) for image in images]
    png_predictions = model.predict(np.concatenate(rows))
    raw_accuracy = float((raw_predictions == labels).mean())
    png_accuracy = float((png_predictions == labels).mean())
    assert len(images) >= 1000
    assert abs(png_accuracy - raw_accuracy) <= 0.003, (png_accuracy, raw_accuracy)
    assert (png_predictions == raw_predictions).mean() >= 0.997


# --- synthetic photos and drawings made from real MNIST digits --------------------------


def marker(digit: np.ndarray, size: int) -> np.ndarray:
    """Ink coverage [0, 1] of the digit upscaled to ``size``: a felt-tip stroke, crisp edges."""
    up = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    return np.clip((np.asarray(up, dtype=np.float32) / 255.0 - 0.25) / 0.3, 0.0, 1.0)


def skeleton(digit: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the digit's one-pixel-wide centre line."""
    image = np.pad(digit > 96, 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = image
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:]]
            n += [p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            count = sum(v.astype(np.int8) for v in n)
            turns = sum((~n[i] & n[(i + 1) % 8]).astype(np.int8) for i in range(8))
            if step == 0:
                keep = (n[0] & n[2] & n[4]) | (n[2] & n[4] & n[6])
            else:
                keep = (n[0] & n[2] & n[6]) | (n[0] & n[4] & n[6])
            remove = p[1:-1, 1:-1] & (count >= 2) & (count <= 6) & (turns == 1) & ~keep
            if remove.any():
                image = image.copy()
                image[1:-1, 1:-1] &= ~remove
                changed = True
    return image[1:-1, 1:-1]


def pen(digit: np.ndarray, size: int, width: float) -> np.ndarray:
    """Ink coverage of the digit's centre line drawn with a round pen ``width`` px wide."""
    scale = 4
    image = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(image)
    step = size * scale / 28
    points = np.argwhere(skeleton(digit))
    on = {(int(y), int(x)) for y, x in points}
    radius = width * scale / 2
    for y, x in on:
        cx, cy = (x + 0.5) * step, (y + 0.5) * step
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if (y + dy, x + dx) in on:
                end = ((x + dx + 0.5) * step, (y + dy + 0.5) * step)
                draw.line(((cx, cy), end), fill=255, width=max(1, round(width * scale)))
    small = image.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def place(ink: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The ink patch at a random (off-centre) position of a ``height x width`` sheet."""
    sheet = np.zeros((height, width), np.float32)
    top = int(rng.integers(0, height - ink.shape[0] + 1))
    left = int(rng.integers(0, width - ink.shape[1] + 1))
    sheet[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return sheet


def photograph(
    ink: np.ndarray,
    rng: np.random.Generator,
    *,
    shadow: bool = False,
    ruled: bool = False,
    chalk: bool = False,
) -> np.ndarray:
    """A phone photo (RGB uint8) of ink coverage on paper: tints, light gradient, noise."""
    height, width = ink.shape
    paper = np.array([0.92, 0.9, 0.85], np.float32) * rng.uniform(0.8, 1.0)
    colour = np.array([0.12, 0.12, 0.2], np.float32) * rng.uniform(0.5, 2.0)
    if chalk:  # a light digit on a dark board
        paper, colour = np.array([0.12, 0.2, 0.15], np.float32), np.array([0.85] * 3, np.float32)
    cover = ink[..., None]
    if ruled:  # blue ruled lines, a blue ballpoint
        colour = np.array([0.1, 0.15, 0.45], np.float32)
        lines = np.zeros((height, 1, 1), np.float32)
        lines[int(rng.integers(0, 30)) :: int(rng.integers(25, 45))] = 1.0
        sheet = paper * (1 - lines) + np.array([0.55, 0.68, 0.92], np.float32) * lines
        reflectance = sheet * (1 - cover) + colour * cover
    else:
        reflectance = paper * (1 - cover) + colour * cover
    angle = rng.uniform(0, 2 * math.pi)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    light = rng.uniform(0.55, 0.75) + rng.uniform(0.3, 0.45) * ramp  # 0.55 .. 1.2
    if shadow:  # a soft-edged shadow (of the phone, a hand) darkening by 45%
        angle, edge = rng.uniform(0, 2 * math.pi), rng.uniform(-0.2, 0.2)
        distance = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) - edge
        light = light * (1 - 0.45 / (1 + np.exp(-40 * distance)))
    noise = rng.standard_normal((height, width, 1), dtype=np.float32) * 8.0
    return np.clip(255 * reflectance * light[..., None] + noise, 0, 255).astype(np.uint8)


def on_table(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photographed sheet lying on a darker table: tilted up to 8 degrees, covering
    40% to 85% of the frame's width, a little off-centre; the table is textured wood."""
    sheet = Image.fromarray(photo)
    angle = float(rng.uniform(-8, 8))
    tilted = sheet.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    mask = Image.new("L", sheet.size, 255).rotate(angle, expand=True)
    share = rng.uniform(0.4, 0.85)
    width, height = int(tilted.width / share), int(tilted.height / share)
    wood = np.array([110, 75, 45], np.float32) * rng.uniform(0.3, 1.0)
    grain = np.sin(np.linspace(0, rng.uniform(20, 60), width, dtype=np.float32))[None, :, None]
    noise = rng.standard_normal((height, width, 1), dtype=np.float32) * 6.0
    table = np.clip(wood * (1 + 0.15 * grain) + noise, 0, 255).astype(np.uint8)
    frame = Image.fromarray(table)
    left = int((width - tilted.width) / 2 + rng.uniform(-0.4, 0.4) * (width - tilted.width))
    top = int((height - tilted.height) / 2 + rng.uniform(-0.4, 0.4) * (height - tilted.height))
    frame.paste(tilted, (left, top), mask)
    return np.asarray(frame)


def paper_digit(digit: np.ndarray, rng: np.random.Generator, thin: bool = False) -> np.ndarray:
    """Digit coverage on a 360x480 sheet (portrait or landscape), 35% to 75% of its width."""
    height, width = (480, 360) if rng.random() < 0.5 else (360, 480)
    size = int(rng.integers(125, 270))
    ink = pen(digit, size, max(2.0, 0.012 * size)) if thin else marker(digit, size)
    return place(ink, height, width, rng)


def canvas_digit(digit: np.ndarray, rng: np.random.Generator, width: float = 0.0) -> np.ndarray:
    """Digit coverage on a 280x280 web canvas: marker strokes, or a pen ``width`` px wide."""
    size = int(rng.integers(150, 260))
    ink = pen(digit, size, width) if width else marker(digit, size)
    return place(ink, 280, 280, rng)


def _exif_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    orientation = int(rng.integers(2, 9))
    stored = Image.fromarray(photograph(paper_digit(digit, rng), rng))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored.transpose(EXIF_STORAGE[orientation]), "JPEG", quality=85, exif=exif)


def _large_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    small = photograph(place(marker(digit, int(rng.integers(200, 500))), 750, 1000, rng), rng)
    big = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BILINEAR)
    return encode(big, "JPEG", quality=85)


def _sixteen_bit(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    grey = Image.fromarray(photograph(paper_digit(digit, rng), rng)).convert("L")
    sixteen = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    return encode(sixteen, "PNG", compress_level=1)


def _transparent(coverage: np.ndarray, stroke: int) -> bytes:
    rgba = np.full((*coverage.shape, 4), stroke, np.uint8)
    rgba[..., 3] = np.rint(255 * coverage)
    return png(Image.fromarray(rgba, "RGBA"))


def _palette(coverage: np.ndarray) -> bytes:
    paper = 1.0 - coverage[..., None]
    rgb = np.rint(255 * (np.array([0.15, 0.2, 0.6]) * coverage[..., None] + paper)).astype(np.uint8)
    return png(Image.fromarray(rgb).quantize(16))


def _gif(coverage: np.ndarray) -> bytes:
    image = Image.fromarray((coverage > 0.5).astype(np.uint8), "P")
    image.putpalette([255, 255, 255, 20, 20, 20])
    return encode(image, "GIF", transparency=0)


def _jpeg(pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(pixels, "JPEG", quality=int(rng.integers(60, 95)))


def _dark_on_white(coverage: np.ndarray) -> np.ndarray:
    return np.rint(255 * (1 - coverage)).astype(np.uint8)


Maker = Callable[[np.ndarray, np.random.Generator], bytes]
PEN_FAMILIES = frozenset({"photo-ballpoint", "canvas-thin-pen"})
FAMILIES: dict[str, tuple[Maker, int]] = {  # name -> (maker, samples)
    "photo": (lambda d, r: _jpeg(photograph(paper_digit(d, r), r), r), 200),
    "photo-ballpoint": (lambda d, r: _jpeg(photograph(paper_digit(d, r, thin=True), r), r), 200),
    "photo-shadow": (lambda d, r: _jpeg(photograph(paper_digit(d, r), r, shadow=True), r), 200),
    "photo-ruled-blue": (lambda d, r: _jpeg(photograph(paper_digit(d, r), r, ruled=True), r), 200),
    "photo-chalkboard": (lambda d, r: _jpeg(photograph(paper_digit(d, r), r, chalk=True), r), 200),
    "photo-sheet-on-table": (
        lambda d, r: _jpeg(on_table(photograph(paper_digit(d, r), r), r), r),
        200,
    ),
    "photo-exif-rotated": (_exif_photo, 200),
    "photo-16-bit": (_sixteen_bit, 200),
    "photo-12-mpx": (_large_photo, 40),
    "canvas-png": (lambda d, r: png(_dark_on_white(canvas_digit(d, r))), 200),
    "canvas-thin-pen": (lambda d, r: png(_dark_on_white(canvas_digit(d, r, width=3.0))), 200),
    "canvas-rgba-black": (lambda d, r: _transparent(canvas_digit(d, r), 0), 200),
    "canvas-rgba-white": (lambda d, r: _transparent(canvas_digit(d, r), 255), 200),
    "canvas-palette": (lambda d, r: _palette(canvas_digit(d, r)), 200),
    "canvas-gif-transparent": (lambda d, r: _gif(canvas_digit(d, r)), 200),
}


def ideal(family: str, digit: np.ndarray) -> np.ndarray:
    """The drawn digit as MNIST would have it: the digit itself, or for a pen drawing its
    centre line drawn 2 px wide straight into the 28x28 grid (thinning a bold digit can
    close or open a loop, which no preprocessing can undo)."""
    if family in PEN_FAMILIES:
        return np.rint(255 * pen(digit, 28, 2.0)).astype(np.uint8)
    return digit


def _box_and_centre(canvas: np.ndarray) -> tuple[int, float]:
    """Longer side of the canvas's ink box (> 20% ink), distance of its centre of mass
    from the centre."""
    rows = np.flatnonzero((canvas > 51).any(axis=1))
    cols = np.flatnonzero((canvas > 51).any(axis=0))
    mass = canvas.astype(np.float64)
    total = mass.sum()
    com_y = mass.sum(axis=1) @ np.arange(28) / total
    com_x = mass.sum(axis=0) @ np.arange(28) / total
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    return int(side), float(math.hypot(com_y - 14.0, com_x - 14.0))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_photos_and_drawings_of_mnist_digits(
    family: str, mnist: tuple[np.ndarray, np.ndarray], model: DigitModel
) -> None:
    make, count = FAMILIES[family]
    images, labels = mnist
    rng = np.random.default_rng(sorted(FAMILIES).index(family))
    picks = rng.choice(len(images), size=count, replace=False)
    canvases, rows = [], []
    for index in picks:
        data = make(images[index], rng)
        canvases.append(to_canvas(data, model.spec, LIMIT))
        rows.append(model.spec.normalize(canvases[-1]))
    # preprocess_image is to_canvas + normalize; check that on one of them
    np.testing.assert_array_equal(preprocess_image(data, model.spec, max_pixels=LIMIT), rows[-1])
    # Judged on the digits the model reads right in their ideal form (nearly all of them).
    ideals = np.stack([ideal(family, images[index]) for index in picks]).reshape(count, -1)
    readable = model.predict(model.spec.normalize(ideals).reshape(count, -1)) == labels[picks]
    right = model.predict(np.concatenate(rows)) == labels[picks]
    accuracy = float(right[readable].mean())
    geometry = [_box_and_centre(canvas) for canvas in canvases]
    boxed = np.mean([19 <= side <= 21 for side, _ in geometry])
    centred = np.mean([distance <= 1.0 for _, distance in geometry])
    assert readable.mean() >= 0.9, f"{family}: only {readable.mean():.3f} readable"
    assert accuracy >= 0.95, (
        f"{family}: accuracy {accuracy:.3f} over {readable.sum()} readable digits"
        f" ({right.mean():.3f} over all {count})"
    )
    assert boxed >= 0.95 and centred >= 0.98, f"{family}: box {boxed:.3f}, centred {centred:.3f}"


def test_blank_photo_has_no_digit() -> None:
    """The same photos with the digit left out: paper, gradient, shadow, noise, JPEG."""
    rng = np.random.default_rng(7)
    empty = np.zeros((360, 480), np.float32)
    for options in ({}, {"shadow": True}, {"ruled": True}, {"chalk": True}):
        for _ in range(5):
            data = _jpeg(photograph(empty, rng, **options), rng)
            with pytest.raises(NoDigitFound):
                preprocess_image(data, ImageSpec(), max_pixels=LIMIT)
    for _ in range(5):  # a blank sheet on a table: the table's edges are not a digit
        data = _jpeg(on_table(photograph(empty, rng), rng), rng)
        with pytest.raises(NoDigitFound):
            preprocess_image(data, ImageSpec(), max_pixels=LIMIT)
