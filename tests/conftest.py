"""Shared fixtures: the committed model repository, MNIST, and settings."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from service.models.repository import ModelVersion, list_models, list_versions, read_version
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# In-process apps (TestClient) serve no gRPC unless a test asks: they would all want
# port 8001. Real servers (tests/server.py) get a free port each.
os.environ["DIGITPASS_GRPC_PORT"] = "0"
MODELS_DIR = REPO_ROOT / "models"
COMMITTED_MODELS = tuple(list_models(MODELS_DIR))


def find_mnist_dir() -> Path | None:
    """MNIST_DIR, else ../shared/datasets beside the checkout; None when absent."""
    candidates = [os.environ.get("MNIST_DIR"), str(REPO_ROOT.parent / "shared" / "datasets")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    found = find_mnist_dir()
    if found is None:
        message = "MNIST not found: set MNIST_DIR to a folder holding MNIST/raw/*-ubyte"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def committed_model() -> Callable[[str], ModelVersion]:
    """The newest committed version of a model, verified against its metadata."""

    def newest(name: str, backend: str = "onnx") -> ModelVersion:
        versions = list_versions(MODELS_DIR / name)
        assert versions, f"no committed version of {name!r} in {MODELS_DIR}"
        return read_version(MODELS_DIR, name, versions[-1], backend)

    return newest


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A private copy of the newest committed version of each committed model."""
    root = tmp_path / "models"
    for name in COMMITTED_MODELS:
        newest = list_versions(MODELS_DIR / name)[-1]
        shutil.copytree(MODELS_DIR / name / str(newest), root / name / str(newest))
    return root


@pytest.fixture
def make_settings(model_repo: Path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {"model_repository": model_repo, "reload_interval_s": 0}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


def load_mnist_test_set(mnist_dir: Path) -> tuple[object, object]:
    """The 10k MNIST test images (uint8 [N, 28, 28]) and labels, straight from IDX."""
    import numpy as np

    raw = mnist_dir / "MNIST" / "raw"
    images = np.fromfile(raw / "t10k-images-idx3-ubyte", dtype=np.uint8, offset=16)
    labels = np.fromfile(raw / "t10k-labels-idx1-ubyte", dtype=np.uint8, offset=8)
    return images.reshape(-1, 28, 28), labels


def png_bytes(pixels: object, mode: str = "L") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode if mode != "L" else None).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mnist_pngs(mnist_dir: Path) -> list[tuple[bytes, int]]:
    """The first 1000 MNIST test images as PNG files, with their labels."""
    images, labels = load_mnist_test_set(mnist_dir)
    return [(png_bytes(images[i]), int(labels[i])) for i in range(1000)]
