"""The digit recipe's pieces: wild augmentation, EMA, temperature calibration, ECE, and
the evaluation families' determinism."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from training.digit import augment, calibrate, families
from training.digit.model import build_model
from training.digit.train import Ema


def _strokes(n: int = 16) -> torch.Tensor:
    pixels = torch.zeros(n, 1, 28, 28)
    pixels[:, :, 6:22, 12:15] = 1.0  # a "1"
    pixels[:, :, 6:9, 9:19] = 1.0
    return pixels


def test_wild_augment_keeps_shape_and_range_and_is_seeded():
    pixels = _strokes()
    wild = augment.WildAugment()
    first = wild(pixels, torch.Generator().manual_seed(3))
    again = wild(pixels, torch.Generator().manual_seed(3))
    other = wild(pixels, torch.Generator().manual_seed(4))
    assert first.shape == pixels.shape and first.dtype == pixels.dtype
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again), "same generator seed, same images"
    assert not torch.equal(first, other)
    assert not torch.allclose(first, pixels, atol=0.05)
    assert not torch.allclose(first[0], first[1]), "each image gets its own deformation"


def test_wild_augment_with_everything_off_is_the_identity():
    off = augment.WildAugment(
        max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_shear=0, elastic_px=0,
        stroke_p=0, blur_p=0, lowres_p=0,
    )  # fmt: skip
    pixels = _strokes()
    assert torch.allclose(off(pixels, torch.Generator().manual_seed(0)), pixels, atol=1e-5)


def test_elastic_distortion_alone_moves_ink_but_keeps_most_of_it():
    elastic = augment.WildAugment(
        max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_shear=0, elastic_px=1.5,
        stroke_p=0, blur_p=0, lowres_p=0,
    )  # fmt: skip
    pixels = _strokes()
    out = elastic(pixels, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, pixels, atol=0.05)
    ratio = out.sum(dim=(1, 2, 3)) / pixels.sum(dim=(1, 2, 3))
    assert ((ratio - 1).abs() < 0.5).all()


def test_stroke_width_blur_and_low_resolution():
    pixels = _strokes(4)
    ink = pixels.sum()
    assert augment.dilate(pixels).sum() > 1.5 * ink
    assert augment.erode(pixels).sum() < 0.5 * ink
    assert torch.allclose(augment.blur(pixels, torch.zeros(4)), pixels, atol=1e-4)
    blurred = augment.blur(pixels, torch.full((4,), 1.0))
    assert blurred.sum() == pytest.approx(float(ink), rel=0.02)  # blur keeps the ink ...
    assert blurred.max() < 1.0  # ... but spreads it
    every = augment.WildAugment(
        max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_shear=0, elastic_px=0,
        stroke_p=0, blur_p=0, lowres_p=1.0, lowres_min=8, lowres_max=8,
    )  # fmt: skip
    low = every(pixels, torch.Generator().manual_seed(0))
    assert not torch.allclose(low, pixels, atol=0.05)
    thick = augment.WildAugment(
        max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_shear=0, elastic_px=0,
        stroke_p=1.0, blur_p=0, lowres_p=0,
    )(_strokes(64), torch.Generator().manual_seed(0))  # fmt: skip
    changes = thick.sum(dim=(1, 2, 3)) / _strokes(1).sum()
    assert (changes > 1.1).any() and (changes < 0.95).any(), "both thicker and thinner"


def test_ema_ramps_up_and_averages():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = Ema(model, decay=0.999)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # first step: decay min(0.999, 2 / 11)
    expected = start + (1 - 2 / 11) * 1.0
    assert torch.allclose(ema.model.weight, expected, atol=1e-6)
    assert not ema.model.weight.requires_grad


def test_fit_temperature_recovers_an_overconfident_scale():
    generator = torch.Generator().manual_seed(0)
    true_logits = 2.0 * torch.randn(20000, 10, generator=generator)
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=generator)[:, 0]
    temperature = calibrate.fit_temperature(3.0 * true_logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("scale", [0.3, 1.0, 1.02, 7.0])
def test_fit_temperature_is_the_minimum_of_the_nll_over_a_dense_grid(scale: float):
    """Confident logits (a margin of about 25, a few confident mistakes), as a trained
    model's are, at several scales: the NLL is nearly flat around its minimum there."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (5000,), generator=generator)
    logits = torch.randn(5000, 10, generator=generator)
    logits[torch.arange(5000), labels] += 25.0
    wrong = torch.arange(0, 5000, 400)  # 13 confident mistakes
    logits[wrong, (labels[wrong] + 1) % 10] += 30.0
    logits = logits * scale
    grid = torch.exp(torch.linspace(math.log(0.05), math.log(20.0), 4001, dtype=torch.float64))
    losses = [float(nn.functional.cross_entropy(logits.double() / t, labels)) for t in grid]
    best = float(grid[int(np.argmin(losses))])
    temperature = calibrate.fit_temperature(logits, labels)
    assert temperature == pytest.approx(best, rel=0.005)


def test_fit_temperature_stays_in_its_range():
    """All right: the NLL falls as T does, to the range's end; all wrong: it falls as T
    grows, to the other end."""
    labels = torch.arange(10).repeat(100)
    logits = nn.functional.one_hot(labels, 10).float()
    low, high = calibrate.TEMPERATURE_RANGE
    assert calibrate.fit_temperature(logits, labels) == pytest.approx(low, rel=1e-3)
    assert calibrate.fit_temperature(-logits, labels) == pytest.approx(high, rel=1e-3)


def test_folded_model_outputs_logits_divided_by_the_temperature():
    torch.manual_seed(0)
    model = build_model("wide").eval()
    inputs = torch.randn(32, 784)
    folded = calibrate.fold_temperature(model, 2.5).eval()
    with torch.no_grad():
        expected = (model(inputs) / 2.5).softmax(1)
        got = folded(inputs).softmax(1)
    assert torch.allclose(got, expected, atol=1e-6)
    assert calibrate.last_linear(model).weight is not calibrate.last_linear(folded).weight
    with pytest.raises(ValueError):
        calibrate.fold_temperature(model, 0.0)


def test_ece_of_known_cases():
    labels = torch.tensor([0] * 10)
    # confidence 0.8 everywhere, 8 of 10 right: perfectly calibrated
    probs = torch.full((10, 10), 0.2 / 9)
    probs[:8, 0] = 0.8
    probs[8:, 1] = 0.8
    probs[8:, 0] = 0.2 / 9
    assert calibrate.expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-6)
    # confidence 1.0, half right: ECE 0.5
    sure = torch.zeros(10, 10)
    sure[:5, 0] = 1.0
    sure[5:, 3] = 1.0
    assert calibrate.expected_calibration_error(sure, labels) == pytest.approx(0.5)
    # two bins: 0.95 all right (gap 0.05) and 0.55 all wrong (gap 0.55), equal weights
    mixed = torch.zeros(4, 10)
    mixed[:2, 0], mixed[:2, 1] = 0.95, 0.05
    mixed[2:, 1], mixed[2:, 0] = 0.55, 0.45
    assert calibrate.expected_calibration_error(mixed, torch.zeros(4, dtype=torch.long)) == (
        pytest.approx(0.5 * 0.05 + 0.5 * 0.55)
    )
    bins = calibrate.reliability_bins(mixed, torch.zeros(4, dtype=torch.long))
    assert len(bins) == calibrate.ECE_BINS and sum(b["count"] for b in bins) == 4


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    images = np.zeros((50, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = 255
    images[:, 6:10, 8:20] = rng.integers(128, 256, (50, 4, 12), dtype=np.uint8)
    return images, rng.integers(0, 10, 50)


def test_every_family_renders_images_deterministically(digits):
    images, labels = digits
    clean, _ = families.sample("clean", images, labels, count=5, seed=1)
    for name, family in families.FAMILIES.items():
        files, targets = families.sample(name, images, labels, count=5, seed=1)
        again, _ = families.sample(name, images, labels, count=5, seed=1)
        assert files == again, name
        assert len(files) == 5 and targets.shape == (5,)
        for data in files:
            image = Image.open(io.BytesIO(data))
            assert image.format in ("PNG", "JPEG") and min(image.size) > 28, name
        if name != "clean":
            assert files != clean, name
        assert family.description
    assert not families.FAMILIES["lowres-8"].bar
    other, _ = families.sample("thick", images, labels, count=5, seed=2)
    assert other != families.sample("thick", images, labels, count=5, seed=1)[0]
