"""The deskewing first layer: slant measured and undone, blanks safe, and exported faithfully."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.digit.data.mnist import MEAN, STD
from training.digit.deskew import Deskew
from training.digit.model import ARCHS, build_model
from training.export import export_onnx, export_torchscript


def slanted_bar(slant: float, centre_col: float = 13.5, width: int = 3) -> torch.Tensor:
    """A normalized [1, 784] image: a vertical bar sheared by ``slant`` (columns per row)."""
    rows = torch.arange(28, dtype=torch.float32).reshape(-1, 1)
    cols = torch.arange(28, dtype=torch.float32).reshape(1, -1)
    axis = centre_col + slant * (rows - 13.5)
    ink = ((cols - axis).abs() <= width / 2).float() * ((rows >= 4) & (rows <= 23)).float()
    return ((ink - MEAN) / STD).reshape(1, -1)


def ink_of(images: torch.Tensor) -> torch.Tensor:
    return (images * STD + MEAN).clamp(min=0.0)


def column_spread(images: torch.Tensor) -> float:
    """How far, on average, a row's ink lies from the image's mean column (in pixels)."""
    ink = ink_of(images).reshape(28, 28)
    cols = torch.arange(28, dtype=torch.float32)
    row_mass = ink.sum(1)
    inked = row_mass > 0.5
    row_centre = (ink * cols).sum(1)[inked] / row_mass[inked]
    return float((row_centre - row_centre.mean()).abs().mean())


@pytest.mark.parametrize("slant", [-0.5, -0.25, 0.25, 0.5])
def test_slant_is_measured_and_undone(slant):
    deskew = Deskew(MEAN, STD)
    image = slanted_bar(slant)
    measured, _, _ = deskew.slant_and_centre(ink_of(image))
    assert measured.item() == pytest.approx(slant, abs=0.05)
    before = column_spread(image)
    after = column_spread(deskew(image))
    assert before > 1.0
    assert after < 0.35, (before, after)


def test_an_upright_centred_bar_is_left_as_it_is():
    image = slanted_bar(0.0)
    out = Deskew(MEAN, STD)(image)
    assert (out - image).abs().max().item() < 1e-4


def test_the_centre_of_mass_moves_to_the_middle():
    deskew = Deskew(MEAN, STD)
    off_centre = slanted_bar(0.0, centre_col=8.5)
    _, row, col = deskew.slant_and_centre(ink_of(deskew(off_centre)))
    assert col.item() == pytest.approx(13.5, abs=0.05)
    assert row.item() == pytest.approx(13.5, abs=0.05)


def test_a_blank_image_stays_blank_and_finite():
    blank = torch.full((3, 784), -MEAN / STD)
    out = Deskew(MEAN, STD)(blank)
    assert torch.isfinite(out).all()
    assert (out - blank).abs().max().item() < 1e-5


def test_ink_is_conserved_apart_from_resampling():
    image = slanted_bar(0.4)
    out = Deskew(MEAN, STD)(image)
    assert ink_of(out).sum().item() == pytest.approx(ink_of(image).sum().item(), rel=0.03)


def test_deskewing_archs_start_with_it_and_others_do_not():
    deskewing = {name for name, spec in ARCHS.items() if spec.deskew}
    assert deskewing, "at least one arch deskews"
    for name in ARCHS:
        first = build_model(name)[0]
        assert isinstance(first, Deskew) == (name in deskewing)


@pytest.mark.slow
def test_onnx_and_torchscript_match_eager(tmp_path):
    name = next(name for name, spec in ARCHS.items() if spec.deskew)
    torch.manual_seed(0)
    model = build_model(name).eval()
    export_onnx(model, torch.randn(2, 784), tmp_path / "m.onnx", input_name="x", output_name="y")
    export_torchscript(model, tmp_path / "m.pt")
    generator = torch.Generator().manual_seed(1)
    batch = torch.cat(
        [
            slanted_bar(0.3),
            slanted_bar(-0.6, centre_col=10.0),
            torch.full((1, 784), -MEAN / STD),
            torch.rand(5, 784, generator=generator) * 3.2 - MEAN / STD,
        ]
    )
    with torch.no_grad():
        expected = model(batch).numpy()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"x": batch.numpy()})[0] - expected).max() < 1e-4
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        assert np.abs(scripted(batch).numpy() - expected).max() < 1e-5
