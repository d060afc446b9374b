"""Inference micro-benchmark: samples/s by batch size, ONNX Runtime vs TorchScript.

Runs the committed digit model through the service's own backends
(``service.models.backends.create_backend``), with one intra-op thread per core, with the
service's default for 1 worker, and with 1 thread, on the CPU and, where a GPU is visible, on
CUDA. Inputs are real MNIST test images, normalised. Each point is the median of
many timed calls, so a busy neighbour shifts it less than a mean would.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import mnist_dir, newest_version

BATCH_SIZES = tuple(2**i for i in range(11))  # 1 .. 1024
MIN_TIME_S = 0.3
MIN_CALLS = 5
WARMUP_CALLS = 3
MEAN, STD = 0.1307, 0.3081


def mnist_batch(rows: int) -> np.ndarray:
    """The first ``rows`` MNIST test images, normalised, float32 ``[rows, 784]``."""
    path = mnist_dir() / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    pixels = np.fromfile(path, dtype=np.uint8, offset=16, count=rows * 784)
    return ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).reshape(rows, 784)


def time_calls(run: Any, batch: np.ndarray, min_time_s: float) -> list[float]:
    """Seconds per call of ``run(batch)``, for at least ``min_time_s`` and ``MIN_CALLS`` calls."""
    for _ in range(WARMUP_CALLS):
        run(batch)
    times: list[float] = []
    deadline = time.perf_counter() + min_time_s
    while len(times) < MIN_CALLS or time.perf_counter() < deadline:
        started = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - started)
    return times


def service_default_threads(cores: int) -> int:
    """The intra-op threads a 1-worker service picks by default (``cores`` if unknown)."""
    try:
        from service.settings import Settings

        return Settings(workers=1, intra_op_threads=0).resolved_intra_op_threads()
    except Exception:  # the settings API may move; the benchmark still runs
        return cores


def devices() -> list[str]:
    from service.models.backends.device import nvidia_gpu_count

    return ["cpu", "cuda"] if nvidia_gpu_count() > 0 else ["cpu"]


def describe_version(config: dict[str, Any]) -> str | None:
    """The network as the metadata records it, with the number of MLPs averaged."""
    architecture = config.get("architecture")
    members = int(config.get("members") or 1)
    if architecture is None or members == 1:
        return architecture
    each = "" if " + (" in architecture else "each "
    return f"mean logits of {members} MLPs, {each}{architecture}"


def run_inference(
    batch_sizes: Sequence[int] = BATCH_SIZES, min_time_s: float = MIN_TIME_S
) -> dict[str, Any]:
    """Samples/s for every backend x device x batch size; see ``bench.report``."""
    from service.models.backends import create_backend

    version = newest_version("digit")
    meta = json.loads((version / "metadata.json").read_text())
    cores = len(os.sched_getaffinity(0))
    default = service_default_threads(cores)
    inputs = mnist_batch(max(batch_sizes))
    results = []
    thread_counts = sorted({cores, default, 1}, reverse=True)
    for device, threads in [(d, t) for d in devices() for t in thread_counts]:
        for kind, file_name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
                backend = create_backend(
                    kind,
                    version / file_name,
                    device=device,
                    input_name=meta["input"]["name"],
                    output_name=meta["output"]["name"],
                    intra_op_threads=threads,
                )
            for size in batch_sizes:
                times = time_calls(backend.run, inputs[:size], min_time_s)
                median = statistics.median(times)
                entry = {
                    "backend": kind,
                    "device": backend.device,
                    "threads": threads,
                    "batch_size": size,
                    "calls": len(times),
                    "median_ms": round(median * 1000, 4),
                    "samples_per_s": round(size / median, 1),
                }
                results.append(entry)
                print(
                    f"bench: {kind:<12}{backend.device:<5}{threads:>2} thr  batch {size:>5}  "
                    f"{entry['samples_per_s']:>12,.0f} samples/s  {entry['median_ms']:.3f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    preprocess = preprocess_cost()
    from bench.version_cost import version_costs

    return {
        "benchmark": "inference",
        "model": f"digit/{version.name}",
        "architecture": describe_version(meta.get("training", {}).get("config", {})),
        "service_threads": default,
        "cores": cores,
        "min_time_s": min_time_s,
        "results": results,
        "preprocess": preprocess,
        "versions": version_costs(min_time_s, (preprocess or {}).get("median_us")),
    }


def preprocess_cost(images: int = 200) -> dict[str, Any] | None:
    """The service's own preprocessing of a 28x28 MNIST PNG, per image (median)."""
    try:
        from bench.payload import mnist_png
        from service.imaging.pipeline import ImageSpec, preprocess_image

        meta = json.loads((newest_version("digit") / "metadata.json").read_text())
        spec = ImageSpec.from_metadata(meta["input"]["preprocessing"])
        pngs = [mnist_png(i) for i in range(images)]
    except Exception as error:  # the service's API may move; the rest still runs
        return {"error": repr(error)}
    times = []
    for png in pngs * 2:
        started = time.perf_counter()
        preprocess_image(png, spec, max_pixels=25_000_000)
        times.append(time.perf_counter() - started)
    return {"images": len(times), "median_us": round(statistics.median(times) * 1e6, 1)}
