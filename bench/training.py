"""Training benchmark: seconds per epoch and test accuracy, default vs ``seed`` architecture.

Runs the training package's own CLI (``python -m training digit``) for a short run of
``epochs`` epochs per architecture, publishing into a temporary repository (never
``models/``) with the quality gate off, then reads what the trainer recorded: its
per-epoch log lines and the published ``metadata.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, mnist_dir

ARCHS = ("wide", "seed")  # wide is training.digit.model.DEFAULT_ARCH
EPOCHS = 3
# "digit: epoch  1/3  train loss 0.6  val acc 0.97  test acc 0.97  7.1 s"
EPOCH_LINE = re.compile(r"epoch\s+(\d+)/\d+.*?test acc ([\d.]+)\s+([\d.]+) s")


def train_once(arch: str, epochs: int, workdir: Path) -> dict[str, Any]:
    """One ``python -m training digit`` run; its per-epoch times and final accuracies."""
    repository = workdir / arch / "models"
    argv = [
        sys.executable,
        "-m",
        "training",
        "digit",
        f"--arch={arch}",
        f"--epochs={epochs}",
        f"--repository={repository}",
        f"--runs-dir={workdir / arch / 'runs'}",
        f"--data-dir={mnist_dir()}",
        "--min-accuracy=0",
        "--device=cpu",
        "--seed=0",
    ]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"training {arch} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    epochs_seen = [
        {"epoch": int(m[1]), "test_accuracy": float(m[2]), "seconds": float(m[3])}
        for m in EPOCH_LINE.finditer(done.stdout)
    ]
    (meta_path,) = repository.glob("digit/*/metadata.json")
    meta = json.loads(meta_path.read_text())
    seconds = [e["seconds"] for e in epochs_seen]
    return {
        "arch": arch,
        "architecture": meta["training"]["config"].get("architecture"),
        "epochs": epochs,
        "device": meta["training"].get("device"),
        "epoch_seconds": seconds,
        "seconds_per_epoch": round(sum(seconds) / len(seconds), 2) if seconds else None,
        "last_epoch_test_accuracy": epochs_seen[-1]["test_accuracy"] if epochs_seen else None,
        "test_accuracy": meta["metrics"]["test_accuracy"],
        "best_epoch": meta["metrics"].get("best_epoch"),
        "command": " ".join(["python", *argv[1:]]).replace(str(workdir), "$TMP"),
    }


def run_training(archs: Sequence[str] = ARCHS, epochs: int = EPOCHS) -> dict[str, Any]:
    """Train each architecture for ``epochs`` epochs on the CPU; see ``bench.report``."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for arch in archs:
            print(f"bench: training {arch} for {epochs} epochs", file=sys.stderr, flush=True)
            entry = train_once(arch, epochs, Path(tmp))
            print(
                f"bench: {arch}: {entry['seconds_per_epoch']} s/epoch, "
                f"test accuracy {entry['test_accuracy']:.4f}",
                file=sys.stderr,
                flush=True,
            )
            results.append(entry)
    from training.digit.train import DEFAULTS

    return {
        "benchmark": "training",
        "epochs": epochs,
        "default_epochs": DEFAULTS["epochs"],
        "results": results,
    }
