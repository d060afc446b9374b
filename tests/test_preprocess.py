"""Unit tests of ``service.imaging.pipeline`` on synthetic images (no data set, no model needed).

The reference is a clean drawing of an asymmetric "7" (light on black): every
transformed version of it (inverted, large, off-centre, transparent, JPEG, 16-bit,
palette, EXIF-rotated, ...) must give nearly the same 28x28 canvas, with MNIST's
geometry: ink box 20 px on its longer side, centre of mass in the middle.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageFilter

from service.errors import EmptyInput, InvalidImage, NoDigitFound, PayloadTooLarge
from service.imaging.decode import WORK_SIDE, decode_gray
from service.imaging.pipeline import NO_DIGIT, ImageSpec, preprocess_image, to_canvas
from tests.imaging_support import EXIF_STORAGE, encode

SPEC = ImageSpec()
LIMIT = 25_000_000
ALLOWED = (EmptyInput, InvalidImage, PayloadTooLarge, NoDigitFound)

# An asymmetric glyph (a "7" with a crossbar), in unit coordinates: no flip or
# rotation of it looks like it, so a wrong EXIF orientation cannot pass.
SEVEN = [((0.18, 0.12), (0.82, 0.12), (0.42, 0.9)), ((0.42, 0.52), (0.78, 0.52))]


def glyph(height: int, width: int, box: tuple[int, int, int], stroke: float) -> np.ndarray:
    """Ink coverage in [0, 1] of the glyph drawn in the square ``box`` = (top, left, side)."""
    top, left, side = box
    scale = 4  # supersampled, then box-filtered: antialiased strokes
    image = Image.new("L", (width * scale, height * scale), 0)
    draw = ImageDraw.Draw(image)
    for line in SEVEN:
        points = [((left + x * side) * scale, (top + y * side) * scale) for x, y in line]
        draw.line(points, fill=255, width=max(1, round(stroke * scale)), joint="curve")
        radius = stroke * scale / 2
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = image.resize((width, height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def gray(coverage: np.ndarray, ink: float = 255.0, paper: float = 0.0) -> np.ndarray:
    return np.rint(paper + (ink - paper) * coverage).astype(np.uint8)


def photo(coverage: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark ink on paper under a strong illumination gradient, with sensor noise."""
    rng = np.random.default_rng(seed)
    height, width = coverage.shape
    reflectance = 0.9 - 0.75 * coverage
    ramp = np.linspace(0.55, 1.05, width, dtype=np.float32)[None, :]
    ramp = ramp * np.linspace(0.85, 1.0, height, dtype=np.float32)[:, None]
    noisy = 255.0 * reflectance * ramp + rng.normal(0.0, 8.0, coverage.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def canvas_of(data: bytes) -> np.ndarray:
    return to_canvas(data, SPEC, LIMIT)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The canvas of a clean 280x280 drawing, light strokes on black."""
    return canvas_of(encode(gray(glyph(280, 280, (40, 50, 200), 18.0)), "PNG"))


def ink_box(canvas: np.ndarray, level: int = 51) -> tuple[int, int]:
    rows = np.flatnonzero((canvas > level).any(axis=1))
    cols = np.flatnonzero((canvas > level).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def centre_of_mass(canvas: np.ndarray) -> tuple[float, float]:
    mass = canvas.astype(np.float64)
    total = mass.sum()
    return (
        float(mass.sum(axis=1) @ np.arange(canvas.shape[0]) / total),
        float(mass.sum(axis=0) @ np.arange(canvas.shape[1]) / total),
    )


def assert_mnist_geometry(canvas: np.ndarray) -> None:
    assert canvas.shape == (28, 28) and canvas.dtype == np.uint8
    assert 19 <= max(ink_box(canvas)) <= 21, ink_box(canvas)
    com_y, com_x = centre_of_mass(canvas)
    assert abs(com_y - 14.0) <= 0.6 and abs(com_x - 14.0) <= 0.6, (com_y, com_x)
    assert canvas.max() >= 250  # full-strength ink, as in MNIST


def likeness(canvas: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(mean abs difference, correlation) at the best whole-pixel shift within one pixel.

    Centring by mass shifts by whole pixels, so a centre of mass near a half pixel may
    round either way on a slightly different rendering: that one pixel is allowed.
    """
    padded = np.pad(reference.astype(np.float32), 1)
    best = (255.0, 0.0)
    for dy in range(3):
        for dx in range(3):
            shifted = padded[dy : dy + 28, dx : dx + 28]
            diff = float(np.abs(canvas - shifted).mean())
            if diff < best[0]:
                best = (diff, float(np.corrcoef(canvas.ravel(), shifted.ravel())[0, 1]))
    return best


def assert_like(canvas: np.ndarray, reference: np.ndarray, max_diff: float = 12.0) -> None:
    """Same digit, same place: small mean difference and high correlation."""
    diff, corr = likeness(canvas, reference)
    assert diff <= max_diff and corr >= 0.9, f"mean abs diff {diff:.1f}, correlation {corr:.3f}"


# --- the reference itself ---------------------------------------------------------------


def test_reference_has_mnist_geometry(reference: np.ndarray) -> None:
    assert_mnist_geometry(reference)
    assert 15 <= ink_box(reference)[0] <= 21  # the glyph is taller than wide: height is 20


def test_output_is_normalised_float32_row() -> None:
    data = encode(gray(glyph(280, 280, (40, 50, 200), 18.0)), "PNG")
    out = preprocess_image(data, SPEC, max_pixels=LIMIT)
    assert out.shape == (1, 784) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = (canvas_of(data).astype(np.float64) / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(out.reshape(28, 28), expected, rtol=0, atol=1e-6)


def test_custom_spec_geometry() -> None:
    spec = ImageSpec(height=32, width=40, fit_box=24, mean=0.5, std=0.25)
    data = encode(gray(glyph(200, 300, (20, 90, 160), 14.0)), "PNG")
    canvas = to_canvas(data, spec, LIMIT)
    assert canvas.shape == (32, 40)
    assert 23 <= max(ink_box(canvas)) <= 25
    out = preprocess_image(data, spec, max_pixels=LIMIT)
    assert out.shape == (1, 32 * 40)
    assert out.min() == pytest.approx(-2.0)  # (0 - 0.5) / 0.25


def test_spec_from_metadata() -> None:
    block = {"kind": "mnist", "height": 28, "width": 28, "mean": 0.1307, "std": 0.3081}
    spec = ImageSpec.from_metadata({**block, "fit_box": 20, "polarity": "light-on-dark"})
    assert spec == ImageSpec(28, 28, 20, 0.1307, 0.3081)
    with pytest.raises(AttributeError):
        spec.height = 3  # type: ignore[misc]
    for bad in (
        {"height": 28, "width": 28, "mean": 0.1},  # no std
        {**block, "height": 28.5},
        {**block, "height": "28"},
        {**block, "std": 0.0},
        {**block, "mean": float("nan")},
        {**block, "fit_box": 29},
        {**block, "width": 0},
    ):
        with pytest.raises(ValueError):
            ImageSpec.from_metadata(bad)


# --- the same digit, transformed --------------------------------------------------------


def _dark_on_light() -> bytes:
    return encode(gray(glyph(280, 280, (40, 50, 200), 18.0), ink=0, paper=255), "PNG")


def _off_centre() -> bytes:
    return encode(gray(glyph(400, 600, (290, 470, 100), 9.0), ink=20, paper=235), "PNG")


def _large_jpeg() -> bytes:
    image = photo(glyph(750, 1000, (300, 120, 300), 27.0))
    big = Image.fromarray(image).resize((4000, 3000), Image.Resampling.BILINEAR)
    return encode(big, "JPEG", quality=85)


def _rgba(stroke_value: int) -> bytes:
    coverage = glyph(280, 280, (40, 50, 200), 18.0)
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = stroke_value
    rgba[..., 3] = gray(coverage)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def _opaque_rgba() -> bytes:
    rgb = gray(glyph(280, 280, (40, 50, 200), 18.0), ink=0, paper=255)
    return encode(Image.fromarray(rgb).convert("RGBA"), "PNG")


def _la_on_transparent_paper_holes() -> bytes:
    # A sheet of paper (opaque, white, dark digit) with transparent rounded corners.
    l_band = gray(glyph(280, 280, (40, 50, 200), 18.0), ink=10, paper=250)
    alpha = np.full((280, 280), 255, np.uint8)
    alpha[:30, :30] = alpha[-30:, -30:] = 0
    return encode(Image.fromarray(np.dstack([l_band, alpha]), "LA"), "PNG")


def _jpeg_rgb() -> bytes:
    coverage = glyph(300, 300, (50, 50, 200), 16.0)
    rgb = np.dstack([gray(coverage, ink=30, paper=240)] * 3)
    rgb[..., 2] = gray(coverage, ink=120, paper=250)  # blue ink
    return encode(rgb, "JPEG", quality=60)


def _cmyk_jpeg() -> bytes:
    rgb = gray(glyph(280, 280, (40, 50, 200), 18.0), ink=0, paper=255)
    return encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90)


def _sixteen_bit(fmt: str) -> Callable[[], bytes]:
    def make() -> bytes:
        coverage = glyph(280, 280, (40, 50, 200), 18.0)
        values = (65535 * (1 - coverage) * 0.9).astype(np.uint16)  # dark ink on light
        image = Image.fromarray(values)
        assert image.mode.startswith("I;16")
        return encode(image, fmt)

    return make


def _float_tiff() -> bytes:
    coverage = glyph(280, 280, (40, 50, 200), 18.0)
    return encode(Image.fromarray(coverage.astype(np.float32)), "TIFF")


def _int32_tiff() -> bytes:
    coverage = glyph(280, 280, (40, 50, 200), 18.0)
    return encode(Image.fromarray((coverage * 4000 - 1000).astype(np.int32)), "TIFF")


def _palette() -> bytes:
    coverage = glyph(280, 280, (40, 50, 200), 18.0)
    rgb = np.dstack([gray(coverage, 20, 250), gray(coverage, 60, 230), gray(coverage, 160, 200)])
    return encode(Image.fromarray(rgb).quantize(8), "PNG")


def _palette_gif_transparent() -> bytes:
    indices = (glyph(280, 280, (40, 50, 200), 18.0) > 0.5).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([255, 255, 255, 0, 0, 0])
    return encode(image, "GIF", transparency=0)


def _one_bit_bmp() -> bytes:
    bits = glyph(280, 280, (40, 50, 200), 18.0) < 0.5  # black ink on white
    return encode(Image.fromarray(bits).convert("1"), "BMP")


def _webp_lossy() -> bytes:
    return encode(photo(glyph(480, 360, (120, 60, 200), 16.0)), "WEBP", quality=70)


def _webp_rgba() -> bytes:
    return encode(Image.open(io.BytesIO(_rgba(0))), "WEBP", lossless=True)


def _avif_photo() -> bytes:
    return encode(photo(glyph(480, 360, (120, 60, 200), 16.0)), "AVIF", quality=60)


def _tiff_rgb() -> bytes:
    return encode(np.dstack([gray(glyph(280, 280, (40, 50, 200), 18.0), 0, 255)] * 3), "TIFF")


def _photo_jpeg() -> bytes:
    return encode(photo(glyph(800, 600, (300, 120, 380), 30.0)), "JPEG", quality=75)


def _thin_pen_photo() -> bytes:
    # A ballpoint line: 4 px on a 500 px digit, under 0.2 px once scaled to 20 px.
    return encode(photo(glyph(800, 600, (150, 50, 500), 4.0)), "JPEG", quality=85)


def _with_specks() -> bytes:
    coverage = glyph(400, 400, (100, 100, 200), 18.0)
    for y, x in ((10, 10), (390, 20), (20, 380), (385, 385), (200, 15)):
        coverage[y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return encode(gray(coverage, ink=0, paper=255), "PNG")


TRANSFORMS: dict[str, Callable[[], bytes]] = {
    "inverted": _dark_on_light,
    "off-centre": _off_centre,
    "large-12mpx-jpeg": _large_jpeg,
    "rgba-transparent-black-strokes": lambda: _rgba(0),
    "rgba-transparent-white-strokes": lambda: _rgba(255),
    "rgba-opaque": _opaque_rgba,
    "la-transparent-corners": _la_on_transparent_paper_holes,
    "jpeg": _jpeg_rgb,
    "cmyk-jpeg": _cmyk_jpeg,
    "16-bit-png": _sixteen_bit("PNG"),
    "16-bit-tiff": _sixteen_bit("TIFF"),
    "float-tiff": _float_tiff,
    "int32-tiff": _int32_tiff,
    "palette": _palette,
    "palette-gif-transparent": _palette_gif_transparent,
    "1-bit-bmp": _one_bit_bmp,
    "webp": _webp_lossy,
    "webp-rgba": _webp_rgba,
    "avif": _avif_photo,
    "tiff-rgb": _tiff_rgb,
    "photo-gradient-noise-jpeg": _photo_jpeg,
    "thin-pen-photo": _thin_pen_photo,
    "specks": _with_specks,
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transformed_digit_gives_the_reference_canvas(name: str, reference: np.ndarray) -> None:
    canvas = canvas_of(TRANSFORMS[name]())
    assert_mnist_geometry(canvas)
    assert_like(canvas, reference)


def test_thin_pen_strokes_are_thickened_to_mnist_width(reference: np.ndarray) -> None:
    canvas = canvas_of(_thin_pen_photo())
    ink = canvas.sum() / reference.sum()
    assert 0.6 <= ink <= 1.4, ink  # unthickened, the strokes would hold a fraction of it


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation", sorted(EXIF_STORAGE))
def test_exif_orientation_is_applied(orientation: int, fmt: str, reference: np.ndarray) -> None:
    upright = Image.fromarray(photo(glyph(480, 360, (120, 60, 220), 18.0)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(upright.transpose(EXIF_STORAGE[orientation]), fmt, exif=exif)
    canvas = canvas_of(data)
    assert_mnist_geometry(canvas)
    assert_like(canvas, reference)
    if orientation in (2, 4, 5, 7):  # a mirror image would not pass either
        mirrored = Image.fromarray(reference).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert np.abs(canvas.astype(np.float32) - np.asarray(mirrored)).mean() > 20


def test_damaged_exif_is_ignored(reference: np.ndarray) -> None:
    data = encode(Image.open(io.BytesIO(_dark_on_light())), "JPEG", exif=b"Exif\x00\x00II*\x00\xff")
    assert_like(canvas_of(data), reference)


def test_animated_gif_uses_the_first_frame(reference: np.ndarray) -> None:
    first = Image.fromarray(gray(glyph(280, 280, (40, 50, 200), 18.0), ink=0, paper=255))
    second = Image.fromarray(gray(glyph(280, 280, (40, 50, 200), 18.0).T, ink=0, paper=255))
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    assert_like(canvas_of(buffer.getvalue()), reference)


def test_mnist_style_crop_is_a_fixed_point(reference: np.ndarray) -> None:
    """An image that already is an MNIST canvas comes through unchanged."""
    for canvas in (reference, canvas_of(_photo_jpeg()), canvas_of(_thin_pen_photo())):
        np.testing.assert_array_equal(canvas_of(encode(canvas, "PNG")), canvas)


# --- errors ------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height``, then a tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _truncated(fmt: str, share: float) -> bytes:
    data = encode(photo(glyph(200, 200, (30, 30, 140), 12.0)), fmt)
    return data[: int(len(data) * share)]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyInput),
        (b"hello, world", InvalidImage),
        (b"\x89PNG\r\n\x1a\n", InvalidImage),
        (np.random.default_rng(0).bytes(5000), InvalidImage),
        (_truncated("PNG", 0.5), InvalidImage),
        (_truncated("PNG", 0.98), InvalidImage),
        (_truncated("JPEG", 0.5), InvalidImage),
        (_truncated("GIF", 0.5), InvalidImage),
        (_truncated("TIFF", 0.5), InvalidImage),
        (_truncated("WEBP", 0.5), InvalidImage),
        (_truncated("AVIF", 0.5), InvalidImage),
        (_png_header(0, 10), InvalidImage),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", InvalidImage),  # no Ghostscript
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"/>', InvalidImage),
        (_png_header(100_000, 100_000), PayloadTooLarge),
        (_png_header(5001, 5000), PayloadTooLarge),  # 25,005,000 > 25,000,000
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_bad_input_raises_the_right_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        preprocess_image(data, SPEC, max_pixels=LIMIT)
    assert caught.value.detail and caught.type is error  # type: ignore[attr-defined]


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    # 2 Gpx declared, 64 bytes of pixel data present: decoding would fail as a truncated
    # image (400), so a 413 shows the verdict came from the header alone.
    with pytest.raises(PayloadTooLarge):
        preprocess_image(_png_header(50_000, 40_000), SPEC, max_pixels=10**12)
    with pytest.raises(InvalidImage):
        preprocess_image(_png_header(500, 400), SPEC, max_pixels=10**12)
    data = encode(gray(glyph(100, 100, (10, 10, 80), 8.0)), "PNG")
    with pytest.raises(PayloadTooLarge):
        preprocess_image(data, SPEC, max_pixels=9999)
    assert preprocess_image(data, SPEC, max_pixels=10_000).shape == (1, 784)


@pytest.mark.parametrize("pixels", [Image.MAX_IMAGE_PIXELS + 1, 2 * Image.MAX_IMAGE_PIXELS + 1])
def test_pillow_bomb_limits_stay_on_and_give_413(pixels: int) -> None:
    """Over Pillow's warning or error size, even when our own limit is higher."""
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    data = _png_header(pixels, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning raised as an exception is caught too
        with pytest.raises(PayloadTooLarge):
            preprocess_image(data, SPEC, max_pixels=10**12)
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    assert Image.MAX_IMAGE_PIXELS is not None


def _blurred_ring(outer: float, inner: float, blur: float) -> np.ndarray:
    """A thick, out-of-focus "0" cropped as tightly as MNIST's: most pixels are inked."""
    from PIL import ImageFilter

    ys, xs = np.mgrid[0:112, 0:112]
    radius = np.hypot(ys - 55.5, (xs - 55.5) / 0.8)
    coverage = ((radius < outer) & (radius > inner)).astype(np.float32)
    image = Image.fromarray(gray(coverage, ink=20.0, paper=255.0))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(blur)))


@pytest.mark.parametrize(("outer", "inner", "blur"), [(46.0, 20.0, 5.0), (44.0, 18.0, 7.0)])
def test_dense_tightly_cropped_digit_is_found(outer: float, inner: float, blur: float) -> None:
    """Over 70% of the pixels are ink: the noise is judged by the flat border and the
    image's fine texture, not by the ink's own spread of levels (once "no digit found")."""
    image = _blurred_ring(outer, inner, blur)
    assert (image < 255).mean() > 0.7
    canvas = canvas_of(encode(image, "PNG"))
    assert 17 <= max(ink_box(canvas)) <= 21  # a blurred edge ends a little inside the box
    com_y, com_x = centre_of_mass(canvas)
    assert abs(com_y - 14.0) <= 0.6 and abs(com_x - 14.0) <= 0.6, (com_y, com_x)
    assert canvas.max() >= 250
    assert canvas[12:16, 12:16].mean() < 0.5 * canvas.max()  # the hole of the "0" stays


def test_marker_strokes_are_thinned_towards_mnist_widths(monkeypatch: pytest.MonkeyPatch) -> None:
    """A marker's strokes (4.8 px at the fit scale, wider than all but 7 of the 10000
    MNIST test digits') come out thinner, about 3.7 px; a pen's (2.4 px) as they are."""
    from service.imaging import geometry

    def fitted(stroke: float) -> tuple[float, float]:
        ink = glyph(112, 112, (12, 12, 88), stroke) * 255.0
        rows, cols = np.flatnonzero(ink.max(axis=1) > 51), np.flatnonzero(ink.max(axis=0) > 51)
        longest = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return geometry.stroke_width(crop) * 20 / longest, geometry.stroke_width(
            geometry.fit_patch(crop, longest, 20)
        )

    before, after = fitted(32.0)
    assert before > geometry.MAX_STROKE + 0.3 and after < before - 0.8, (before, after)
    assert after < geometry.MAX_STROKE, (before, after)
    pen, pen_after = fitted(12.0)
    assert 1.0 < pen < geometry.MAX_STROKE and pen_after == pytest.approx(pen, abs=0.4)
    monkeypatch.setattr(geometry, "MAX_STROKE", 1e9)
    assert fitted(32.0)[1] > after + 0.8  # without thinning, still thick


def test_a_flat_frame_around_dense_noise_has_no_digit() -> None:
    """Uniform noise filling most of a white-framed image: the noise, measured on its
    fine texture, is too strong for its contrast with the frame: no digit."""
    rng = np.random.default_rng(3)
    image = np.full((200, 200), 255, np.uint8)
    image[10:190, 10:190] = rng.integers(0, 256, (180, 180), dtype=np.uint8)
    for fmt in ("PNG", "JPEG"):
        with pytest.raises(NoDigitFound):
            canvas_of(encode(image, fmt, quality=90))


def _ruled_photo(degrees: float) -> np.ndarray:
    """The glyph on ruled paper tilted by ``degrees`` (lines every 30 px, 3 px wide,
    35% darker: as dark as a light pen), under the photo's gradient and noise."""
    height, width = 600, 800
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    slope = math.tan(math.radians(degrees))
    lines = ((ys - slope * (xs - width / 2)) % 30.0 < 3.0).astype(np.float32)
    coverage = glyph(height, width, (150, 260, 300), 22.0)
    rng = np.random.default_rng(4)
    reflectance = 0.9 * (1 - 0.35 * lines) * (1 - coverage) + 0.12 * coverage
    light = np.linspace(0.7, 1.05, width, dtype=np.float32)[None, :]
    noisy = 255.0 * reflectance * light + rng.normal(0.0, 3.0, reflectance.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("degrees", [0.0, 3.5, -6.0])
def test_ruled_lines_at_the_sheets_tilt_are_not_ink(degrees: float, reference: np.ndarray) -> None:
    """Lines across the whole image, at any small tilt, are removed: the digit alone is
    boxed, fitted and centred."""
    canvas = canvas_of(encode(_ruled_photo(degrees), "JPEG", quality=90))
    assert_mnist_geometry(canvas)
    assert_like(canvas, reference, max_diff=20.0)


def test_a_pages_edge_at_the_frame_is_not_the_digit() -> None:
    """A narrow sliver of ink along the frame, apart from the digit (a table showing
    past a page's edge), is left out of the box; a stroke that reaches the frame is not."""
    from service.imaging.box import ink_box

    ink = np.zeros((300, 400), np.float32)
    ink[100:200, 150:170] = 255.0  # a "1"
    ink[:150, 394:] = 255.0  # a sliver at the right edge
    assert ink_box(ink)[2:] == (150, 170)
    bar = np.zeros((300, 400), np.float32)
    bar[100:200, 150:170] = 255.0
    bar[100:110, 180:400] = 160.0  # a lighter stroke running to the frame
    assert ink_box(bar)[3] == 400


def test_a_tables_strip_at_the_frame_is_not_the_digit_even_when_heavier() -> None:
    """A strip of textured table at the side of a landscape photo (a tilted sheet's
    wedge: 7% of the width, three quarters of the height, heavier than a faint digit)
    is left out of the box; its length is judged against the image's height, the
    direction it runs in."""
    from service.imaging.box import ink_box

    ink = np.zeros((300, 450), np.float32)
    ink[100:180, 200:240:4] = 255.0  # a faint, broken digit: 10 one-pixel strokes
    for row in range(0, 230):  # the wedge: 32 px wide at the top, 8 px at the bottom
        ink[row, 450 - 32 + row * 24 // 230 :: 2] = 255.0  # wood grain, every other column
    assert ink_box(ink)[2:] == (200, 237)
    sideways = np.ascontiguousarray(ink.T)  # the same, a strip at the bottom of a portrait
    assert ink_box(sideways)[:2] == (200, 237)


def _noise_only() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.clip(rng.normal(200, 10, (480, 640)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "image",
    [
        np.full((280, 280), 255, np.uint8),
        np.zeros((280, 280), np.uint8),
        np.full((50, 70), 128, np.uint8),
        np.zeros((1, 1), np.uint8),
        np.full((1, 1), 255, np.uint8),
        _noise_only(),
        np.tile(np.linspace(60, 250, 640, dtype=np.float32), (480, 1)).astype(np.uint8),
        np.zeros((280, 280, 4), np.uint8),  # fully transparent
        np.pad(np.zeros((1, 1), np.uint8), 200, constant_values=255),  # one dark pixel: a dot
        np.full((1, 10000), 255, np.uint8),
    ],
    ids=[
        "white",
        "black",
        "grey",
        "1x1-black",
        "1x1-white",
        "noise",
        "gradient",
        "transparent",
        "dot",
        "10000x1-blank",
    ],
)
def test_blank_image_has_no_digit(image: np.ndarray) -> None:
    for fmt in ("PNG", "JPEG") if image.ndim == 2 else ("PNG",):
        with pytest.raises(NoDigitFound) as caught:
            preprocess_image(encode(image, fmt, quality=90), SPEC, max_pixels=LIMIT)
        assert caught.value.detail == NO_DIGIT == "no digit found"


@pytest.mark.parametrize("shape", [(1, 10000), (10000, 1), (3, 9000), (9000, 2)])
def test_extreme_aspect_ratios(shape: tuple[int, int]) -> None:
    image = np.full(shape, 255, np.uint8)
    if shape[0] < shape[1]:
        image[:, shape[1] // 3 : shape[1] // 2] = 0
    else:
        image[shape[0] // 3 : shape[0] // 2, :] = 0
    canvas = canvas_of(encode(image, "PNG"))  # a line: a valid, if odd, digit
    assert canvas.shape == (28, 28) and 19 <= max(ink_box(canvas)) <= 21


def test_fuzz_never_raises_anything_else() -> None:
    """Random bytes, truncations and bit flips of every supported format."""
    rng = np.random.default_rng(12345)
    samples = [
        encode(photo(glyph(64, 48, (8, 4, 40), 4.0)), fmt, **options)
        for fmt, options in [
            ("PNG", {}),
            ("JPEG", {"quality": 80}),
            ("JPEG", {"quality": 80, "progressive": True}),
            ("GIF", {}),
            ("BMP", {}),
            ("WEBP", {"quality": 80}),
            ("AVIF", {"quality": 60}),
            ("TIFF", {}),
            ("TIFF", {"compression": "tiff_deflate"}),
            ("PPM", {}),
        ]
    ]
    samples.append(_sixteen_bit("PNG")())
    samples.append(_rgba(0))
    cases: list[bytes] = [rng.bytes(int(n)) for n in rng.integers(1, 3000, 60)]
    for sample in samples:
        for _ in range(20):
            data = bytearray(sample)
            kind = rng.integers(3)
            if kind == 0:
                data = data[: int(rng.integers(1, len(data)))]
            elif kind == 1:
                for position in rng.integers(0, len(data), int(rng.integers(1, 12))):
                    data[position] = int(rng.integers(256))
            else:
                position = int(rng.integers(0, len(data)))
                data[position:position] = rng.bytes(int(rng.integers(1, 64)))
            cases.append(bytes(data))
    outcomes = {"ok": 0, **{error.__name__: 0 for error in ALLOWED}}
    for data in cases:
        try:
            out = preprocess_image(data, SPEC, max_pixels=LIMIT)
        except ALLOWED as exc:
            outcomes[type(exc).__name__] += 1
        else:
            assert out.shape == (1, 784) and out.dtype == np.float32
            assert np.isfinite(out).all()
            outcomes["ok"] += 1
    assert outcomes["InvalidImage"] > 100 and outcomes["ok"] > 10, outcomes


def test_concurrent_calls_agree() -> None:
    makers = (_dark_on_light, _photo_jpeg, _palette, TRANSFORMS["rgba-transparent-black-strokes"])
    inputs = [make() for make in makers] * 4
    expected = [canvas_of(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(canvas_of, inputs))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


# --- large inputs (timings are in the benchmark: docs/benchmarks.md) ---------------------


def test_a_12_megapixel_jpeg_is_decoded_small() -> None:
    """DCT scaling and box reduction keep the working image at WORK_SIDE or less."""
    working = decode_gray(_large_jpeg(), LIMIT)
    assert max(working.shape) <= WORK_SIDE
    assert max(working.shape) >= WORK_SIDE // 2  # reduced, not thrown away
    assert working.shape[1] > working.shape[0]  # 4:3 landscape kept


def _ring() -> np.ndarray:
    """A digit-like ring of 6 px strokes at ink level 200 in a 300x400 image."""
    ys, xs = np.mgrid[0:300, 0:400].astype(np.float32)
    return np.where(np.abs(np.hypot(ys - 100, xs - 120) - 40) < 3, 200.0, 0.0).astype(np.float32)


def _with_region(strokes: np.ndarray, region: np.ndarray, edge_blur: float) -> np.ndarray:
    """``strokes`` over a region at half their contrast, its edge blurred by ``edge_blur``."""
    if edge_blur:
        image = Image.fromarray(region.astype(np.uint8) * 255)
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(edge_blur)), np.float32)
        region = blurred / 255.0
    return np.maximum(strokes, 100.0 * region).astype(np.float32)


def test_a_hard_shadow_inside_a_uniform_border_is_found() -> None:
    """A sharp-edged wide region away from the strokes is a hard shadow; the same region
    with a soft edge (a blurred blob's flank) is not, nor are strokes alone, nor a thin
    pen's faint, flat halo right beside its strokes."""
    from service.imaging.shadow import hard_shadow

    strokes = _ring()
    ys, xs = np.mgrid[0:300, 0:400]
    corner = (ys > 150) & (xs > 220)
    assert hard_shadow(_with_region(strokes, corner, 0.0), 200.0)
    assert hard_shadow(_with_region(strokes, corner, 0.7), 200.0)
    assert not hard_shadow(_with_region(strokes, corner, 12.0), 200.0)
    assert not hard_shadow(strokes, 200.0)
    halo = Image.fromarray((strokes > 0).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(31))
    assert not hard_shadow(_with_region(strokes, np.asarray(halo) > 0, 0.0), 200.0)
