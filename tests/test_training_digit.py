"""Digit training on a tiny fake MNIST: quality gate, reproducibility, augmentation."""

from __future__ import annotations

import io
import sys

import pytest
import torch
from training_support import fake_mnist

from training import runlog
from training.__main__ import run
from training.digit import augment
from training.digit import train as digit_train
from training.digit.data.mnist import load_mnist
from training.digit.model import build_model
from training.errors import QualityGateError


def test_quality_gate_refuses_a_weak_model(tmp_path, capsys):
    data_dir = fake_mnist(tmp_path / "data")  # noise: about 10% accuracy at best
    repository = tmp_path / "models"
    code = run(
        [
            "digit",
            "--data-dir", str(data_dir),
            "--repository", str(repository),
            "--runs-dir", str(tmp_path / "runs"),
            "--arch", "seed",
            "--members", "1",
            "--epochs", "1",
            "--val-size", "100",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == QualityGateError.exit_code != 0
    line = captured.err.strip()
    assert "\n" not in line
    assert "\r" not in captured.err and "batch" not in captured.err, "no progress bar off a TTY"
    assert "test accuracy 0." in line and "below --min-accuracy 0.9800" in line
    assert not (repository / "digit").exists(), "a refused model must leave no trace"
    assert "epoch  1/1" in captured.out and "val acc" in captured.out
    assert list((tmp_path / "runs").glob("digit-seed-seed0-*/events.out.tfevents.*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_exits_2(tmp_path, capsys):
    data_dir = fake_mnist(tmp_path / "data", n_train=20, n_test=10)
    models = str(tmp_path / "models")
    code = run(["digit", "--device", "cuda", "--data-dir", str(data_dir), "--repository", models])
    assert code == 2
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize(("accuracy", "passes"), [(0.9799, False), (0.98, True), (0.99, True)])
def test_check_quality_threshold(accuracy, passes):
    if passes:
        digit_train.check_quality(accuracy, 0.98)
    else:
        with pytest.raises(QualityGateError, match=f"{accuracy:.4f}"):
            digit_train.check_quality(accuracy, 0.98)


def _train_once(data_dir, arch):
    splits = load_mnist(data_dir, val_size=50, seed=1, download=False)
    torch.manual_seed(1)
    model = build_model(arch)
    result = digit_train.fit(model, splits, epochs=2, lr=1e-3, batch_size=64, seed=1, augment=True)
    return model.state_dict(), result.history


@pytest.mark.parametrize("arch", ["seed", "wide"])
def test_training_is_reproducible_on_cpu(tmp_path, arch):
    data_dir = fake_mnist(tmp_path, n_train=250, n_test=40)
    (first, history_a), (second, history_b) = (
        _train_once(data_dir, arch),
        _train_once(data_dir, arch),
    )
    assert history_a["train_loss"] == history_b["train_loss"]
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_augmentation_keeps_shape_and_background_and_moves_ink():
    pixels = torch.zeros(32, 1, 28, 28)
    pixels[:, :, 10:18, 12:16] = 1.0
    jitter = augment.AffineJitter()
    out = jitter(pixels, torch.Generator().manual_seed(0))
    assert out.shape == pixels.shape
    assert out[:, :, 0, :].abs().max() == 0 and out[:, :, :, 0].abs().max() == 0
    assert out.min() >= 0 and out.max() <= 1.0 + 1e-6
    ink = out.sum(dim=(1, 2, 3))
    assert ((ink / pixels[0].sum()) - 1).abs().max() < 0.35  # scales 0.9-1.1: area 0.81-1.21
    assert not torch.allclose(out[0], out[1])  # each image gets its own transform
    identity = augment.AffineJitter(max_shift=0, max_rotation=0, min_scale=1, max_scale=1)
    assert torch.allclose(identity(pixels, torch.Generator()), pixels, atol=1e-5)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_when_stderr_is_a_terminal(monkeypatch):
    batches = [1, 2, 3]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert runlog.progress(batches, desc="epoch 1/1", unit="batch") is batches
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = runlog.progress(batches, desc="epoch 1/1", unit="batch")
    assert bar is not batches and list(bar) == batches
    assert "batch" in terminal.getvalue()
    assert not runlog.is_terminal(None)


def test_off_a_terminal_each_epoch_is_one_line(tmp_path, capsys):
    data_dir = fake_mnist(tmp_path, n_train=150, n_test=40)
    splits = load_mnist(data_dir, val_size=50, seed=0, download=False)
    digit_train.fit(
        build_model("seed"), splits, epochs=3, lr=1e-3, batch_size=16, seed=0, augment=False
    )
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"digit: epoch {epoch:2d}/3  train loss ")
