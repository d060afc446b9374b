"""LitServe's own virtualenv under ``bench/``, created on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import BENCH_DIR

VENV_DIR = BENCH_DIR / ".venv-litserve"
PACKAGES = ("litserve", "onnxruntime", "pillow", "numpy", "python-multipart")


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _ready(python: Path) -> bool:
    if not python.is_file():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import litserve, onnxruntime, PIL, numpy, multipart"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def ensure_litserve_venv() -> Path:
    """Create the venv and install LitServe into it unless it already works; its python."""
    python = venv_python()
    if _ready(python):
        return python
    print(f"bench: creating {VENV_DIR} with {', '.join(PACKAGES)}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES],
        check=True,
    )
    return python


def litserve_versions(python: Path) -> dict[str, str]:
    """Versions of the packages in the LitServe venv, for the report."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({p: m.version(p) for p in "
        "('litserve', 'onnxruntime', 'fastapi', 'uvicorn', 'uvloop', 'httptools')}))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)
