"""Bounded cost per upload (issue 10): for images within the body and pixel limits, decoding
and preprocessing answer quickly, a 4xx or a digit, whatever the image's shape, depth or
frame count; a small digit in a large image can still be read."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.errors import ServiceError
from service.imaging.pipeline import ImageSpec
from service.models.kinds.image import prepare_images

MAX_PIXELS = 25_000_000
CPU_BOUND_S = 3.0  # one image of up to 25 Mpx, on a slow machine
BODY_LIMIT = 5 * 1024 * 1024


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def digit_on(image: Image.Image, box: tuple[int, int, int, int], ink: float | int) -> Image.Image:
    ImageDraw.Draw(image).line(box, fill=ink, width=max(2, (box[3] - box[1]) // 6))
    return image


SIDE = 5000
COSTLY: dict[str, Callable[[], bytes]] = {
    "16-bit PNG, 25 Mpx": lambda: encode(
        digit_on(Image.new("I;16", (SIDE, SIDE), 65535), (2500, 1000, 2500, 4000), 0), "PNG"
    ),
    "float TIFF, 4 Mpx": lambda: encode(
        digit_on(Image.new("F", (2000, 2000), 1.0), (1000, 400, 1000, 1600), 0.0),
        "TIFF",
        compression="tiff_adobe_deflate",
    ),
    "32-bit int PNG-like TIFF, 16 Mpx": lambda: encode(
        digit_on(Image.new("I", (4000, 4000), 70000), (2000, 800, 2000, 3200), 0),
        "TIFF",
        compression="tiff_adobe_deflate",
    ),
    "extreme aspect 25000000 x 1": lambda: encode(Image.new("L", (MAX_PIXELS, 1), 255), "PNG"),
    "extreme aspect 1 x 25000000": lambda: encode(Image.new("L", (1, MAX_PIXELS), 255), "PNG"),
    "many GIF frames": lambda: encode(
        Image.new("L", (500, 500), 255),
        "GIF",
        save_all=True,
        append_images=[Image.new("L", (500, 500), i % 256) for i in range(2000)],
    ),
    "many TIFF pages": lambda: encode(
        Image.new("L", (400, 400), 255),
        "TIFF",
        save_all=True,
        append_images=[Image.new("L", (400, 400), 0) for _ in range(300)],
        compression="tiff_adobe_deflate",
    ),
    "over the pixel limit": lambda: encode(Image.new("L", (6000, 6000), 255), "PNG"),
    "truncated PNG": lambda: encode(Image.new("L", (3000, 3000), 128), "PNG")[:-5000],
}


@pytest.mark.slow
@pytest.mark.parametrize("label", list(COSTLY))
def test_each_costly_image_is_answered_quickly(label):
    data = COSTLY[label]()
    assert len(data) <= BODY_LIMIT, f"{label}: {len(data)} bytes"
    started = time.thread_time()
    try:
        prepared = prepare_images(ImageSpec(), MAX_PIXELS, [data])
        outcome = f"prepared {prepared.shape}"
    except ServiceError as exc:
        assert 400 <= exc.status_code < 500, exc
        assert "PIL" not in exc.detail and "Traceback" not in exc.detail
        outcome = f"{exc.status_code} {exc.detail}"
    seconds = time.thread_time() - started
    print(f"{label}: {seconds * 1000:.0f} ms CPU, {outcome}")
    assert seconds < CPU_BOUND_S


def test_a_truncated_image_is_400():
    data = encode(Image.new("L", (300, 300), 128), "PNG")[:-200]
    with pytest.raises(ServiceError) as refused:
        prepare_images(ImageSpec(), MAX_PIXELS, [data])
    assert refused.value.status_code == 400
    assert refused.value.detail == "corrupt, truncated or unsupported image"


@pytest.mark.slow
def test_a_small_digit_in_a_large_high_depth_image_is_still_read():
    image = Image.new("I;16", (4000, 3000), 65535)
    digit_on(image, (2000, 1300, 2000, 1700), 0)  # a "1", a tenth of the height
    prepared = prepare_images(ImageSpec(), MAX_PIXELS, [encode(image, "PNG")])
    canvas = prepared.reshape(28, 28)
    assert np.ptp(canvas) > 1  # ink found and centred, not a blank canvas
