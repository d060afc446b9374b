"""digitpass benchmarks: serving (wrk against every row), inference and training.

``python -m bench`` runs all three and regenerates ``docs/benchmarks.md`` from the
JSON results under ``bench/results/``. See ``python -m bench --help``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
MODELS_DIR = REPO_ROOT / "models"
DOC_PATH = REPO_ROOT / "docs" / "benchmarks.md"


def mnist_dir() -> Path:
    """``$MNIST_DIR``, else ``/work/shared/datasets`` (holds ``MNIST/raw/*-ubyte``)."""
    return Path(os.environ.get("MNIST_DIR", "/work/shared/datasets"))


def newest_version(name: str, root: Path = MODELS_DIR) -> Path:
    """The folder of the highest integer version of model ``name``."""
    versions = [p for p in (root / name).iterdir() if p.name.isdigit() and p.is_dir()]
    if not versions:
        raise FileNotFoundError(f"no version of model {name!r} under {root}")
    return max(versions, key=lambda p: int(p.name))
