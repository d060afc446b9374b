"""IDX reading, MNIST discovery and the clear error when the data is missing."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from training_support import fake_mnist, write_idx

from training.__main__ import run
from training.digit.data import mnist
from training.errors import DataError


def test_read_idx_round_trips_uint8_images(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    tensor = mnist.read_idx(write_idx(tmp_path / "images-idx3-ubyte", images))
    assert tensor.dtype == torch.uint8
    assert tensor.shape == (3, 28, 28)
    assert torch.equal(tensor, torch.from_numpy(images))


def test_read_idx_handles_big_endian_ints_and_gzip(tmp_path):
    values = np.array([[1, -2, 70000], [3, 4, -5]], dtype=np.int32)
    plain = write_idx(tmp_path / "ints-idx2", values)
    zipped = tmp_path / "ints-idx2.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        tensor = mnist.read_idx(path)
        assert tensor.tolist() == [[1, -2, 70000], [3, 4, -5]]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x01\x02\x08\x01", "bad magic"),
        (b"", "bad magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "says (5,) (5 bytes) but the file holds 3"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, payload, expected):
    path = tmp_path / "bad-idx"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        mnist.read_idx(path)


def test_load_mnist_splits_normalizes_and_is_seeded(tmp_path):
    fake_mnist(tmp_path, n_train=50, n_test=20)
    a = mnist.load_mnist(tmp_path, val_size=10, seed=3, download=False)
    b = mnist.load_mnist(tmp_path, val_size=10, seed=3, download=False)
    assert a.sizes() == {"train_size": 40, "val_size": 10, "test_size": 20}
    assert a.train_x.shape == (40, 1, 28, 28) and a.val_x.shape == (10, 784)
    assert a.train_x.min() >= 0.0 and a.train_x.max() <= 1.0
    assert a.test_x.min().item() == pytest.approx((0 - 0.1307) / 0.3081, abs=1e-3)
    assert torch.equal(a.val_y, b.val_y) and torch.equal(a.train_x, b.train_x)
    limited = mnist.load_mnist(tmp_path, val_size=10, seed=3, train_limit=7, download=False)
    assert limited.sizes()["train_size"] == 7


def test_missing_data_exits_2_with_one_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    def offline(data_dir):
        raise OSError("Name or service not known")

    monkeypatch.setattr(mnist, "_download", offline)
    empty = tmp_path / "nothing-here"
    code = run(["digit", "--data-dir", str(empty), "--repository", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"{(empty / 'MNIST' / 'raw').resolve()}/" in err
    for name in mnist.FILES.values():
        assert name in err
    assert "download failed: OSError: Name or service not known" in err
    assert not (tmp_path / "m").exists()
    assert not (empty / "MNIST").exists(), "the failed download left folders behind"


def test_locate_tries_the_download_and_uses_what_it_fetched(tmp_path, monkeypatch):
    calls = []

    def fetch(data_dir):
        calls.append(data_dir)
        fake_mnist(data_dir, n_train=5, n_test=5)

    monkeypatch.setattr(mnist, "_download", fetch)
    found = mnist.locate(tmp_path)
    assert calls == [tmp_path]
    assert found["test_labels"] == tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
