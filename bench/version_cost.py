"""Serving cost per image of the newest committed digit version against the newest
single-MLP version before it: what an ensemble (or any new model) adds to every
request.

Per version: the ONNX Runtime call per image at batch 1 and 64 (the service's default
threads for 1 worker), and the same plus the service's preprocessing of a 28x28 PNG
(what one ``/predict/digit`` upload costs the server in compute, HTTP aside). The
versions are timed alternately, so a busy neighbour slows them alike.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import MODELS_DIR
from bench.inference import mnist_batch, service_default_threads, time_calls

BATCHES = (1, 64)
ROUNDS = 3


def members_of(folder: Path) -> int:
    """How many MLPs a digit version averages (1 for a single one)."""
    meta = json.loads((folder / "metadata.json").read_text())
    return int(meta.get("training", {}).get("config", {}).get("members") or 1)


def digit_versions(root: Path = MODELS_DIR) -> list[Path]:
    """The newest digit version, and before it the newest single-MLP one (what an
    ensemble's cost is judged against), oldest first; else the one before it."""
    folders = [p for p in (root / "digit").iterdir() if p.name.isdigit() and p.is_dir()]
    folders.sort(key=lambda p: int(p.name))
    if len(folders) < 2:
        return folders
    newest, older = folders[-1], folders[:-1]
    singles = [folder for folder in older if members_of(folder) == 1]
    return [(singles or older)[-1], newest]


def version_costs(min_time_s: float, preprocess_us: float | None) -> dict[str, Any]:
    """Per-image ms of the newest two digit versions, and the newest's ratio to the other."""
    import os

    from service.models.backends import create_backend

    versions = digit_versions()
    threads = service_default_threads(len(os.sched_getaffinity(0)))
    backends = {}
    for folder in versions:
        meta = json.loads((folder / "metadata.json").read_text())
        backends[folder.name] = create_backend(
            "onnx",
            folder / "model.onnx",
            device="cpu",
            input_name=meta["input"]["name"],
            output_name=meta["output"]["name"],
            intra_op_threads=threads,
        )
    inputs = mnist_batch(max(BATCHES))
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):
        for name, backend in backends.items():
            for size in BATCHES:
                times = time_calls(backend.run, inputs[:size], min_time_s / ROUNDS)
                samples.setdefault((name, size), []).extend(times)
    rows = []
    for name in backends:
        row: dict[str, Any] = {"version": int(name)}
        for size in BATCHES:
            per_image_ms = statistics.median(samples[(name, size)]) * 1000 / size
            row[f"model_ms_per_image_b{size}"] = round(per_image_ms, 5)
            if preprocess_us is not None:
                row[f"upload_ms_per_image_b{size}"] = round(per_image_ms + preprocess_us / 1000, 5)
        rows.append(row)
    out: dict[str, Any] = {"threads": threads, "versions": rows}
    if len(rows) == 2:
        old, new = rows
        out["ratios"] = {
            key: round(new[key] / old[key], 2) for key in new if key != "version" and old.get(key)
        }
    return out
