"""Before and after the serving-architecture change, on the same machine, interleaved.

The service at ``BASELINE_COMMIT`` (the last release before one pipeline and the
preprocessing stage) is unpacked from git into ``bench/.baseline-<commit>/`` and run
from there; the current checkout is "after". Each round starts each side fresh, in
alternating order, and measures at concurrency 64:

* ``GET /predict/pass``: server CPU per request (the shared layers' price);
* ``POST /predict/digit`` with 28x28 PNGs: req/s and CPU per upload;
* the same uploads while one 12-megapixel JPEG photo is uploaded every second: the
  small uploads' p99 against the run without photos (the preprocessing stage's point).
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench import BENCH_DIR, MODELS_DIR, REPO_ROOT
from bench.loadgen import Target, run_load
from bench.machine import cpu_snapshot, group_cpu_s
from bench.payload import mnist_png, multipart_body, multipart_content_type
from bench.servers import Server, ServerSpec

BASELINE_COMMIT = "86beae5"
LEVEL = 64
PHOTO_SIZE = (4000, 3000)  # 12 megapixels
PHOTO_INTERVAL_S = 1.0


def baseline_checkout(commit: str = BASELINE_COMMIT) -> Path:
    """The service and bench code of ``commit``, unpacked once (``git archive``)."""
    target = BENCH_DIR / f".baseline-{commit}"
    if not (target / "service").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "service"], cwd=REPO_ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _spec(cwd: Path) -> ServerSpec:
    argv = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
    env = {"DIGITPASS_MODEL_REPOSITORY": str(MODELS_DIR), "DIGITPASS_GRPC_PORT": "0"}
    return ServerSpec(argv, "/readyz", env, cwd=cwd)


def photo_jpeg(size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """A phone-sized photo of a digit on paper: a grey gradient, noise, a dark 7."""
    width, height = size
    rng = np.random.default_rng(0)
    ramp = np.linspace(150, 215, width, dtype=np.float32)[None, :]
    paper = np.repeat(ramp, height, axis=0) + rng.normal(0, 6, (height, width)).astype(np.float32)
    digit = Image.open(io.BytesIO(mnist_png(0))).resize((1200, 1200), Image.Resampling.BILINEAR)
    ink = np.asarray(digit, dtype=np.float32) / 255.0
    top, left = (height - 1200) // 2, (width - 1200) // 2
    region = paper[top : top + 1200, left : left + 1200]
    paper[top : top + 1200, left : left + 1200] = region * (1 - 0.8 * ink)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class PhotoSender(threading.Thread):
    """Uploads one photo every ``PHOTO_INTERVAL_S`` until stopped; records each answer."""

    def __init__(self, url: str, photo: bytes) -> None:
        super().__init__(daemon=True)
        self._url, self._photo = url, photo
        self._halt = threading.Event()
        self.answers: list[tuple[int, float]] = []  # (status, seconds)

    def run(self) -> None:
        while not self._halt.wait(PHOTO_INTERVAL_S):
            request = urllib.request.Request(
                self._url, data=self._photo, headers={"Content-Type": "image/jpeg"}
            )
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            self.answers.append((status, round(time.perf_counter() - started, 3)))

    def stop(self) -> None:
        self._halt.set()
        self.join(35)


def _load(server: Server, target: Target, duration_s: float, tool: str) -> dict[str, Any]:
    run_load(target, concurrency=LEVEL, duration_s=min(2.0, duration_s), tool=tool)  # warm-up
    before = cpu_snapshot()
    result = run_load(target, concurrency=LEVEL, duration_s=duration_s, tool=tool)
    cpu_s = group_cpu_s(before, cpu_snapshot(), server.pgid or -1)
    return {
        "rps": round(result.rps, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "cpu_ms_per_req": round(cpu_s * 1000 / result.requests, 4) if result.requests else None,
    }


def measure(side: str, cwd: Path, duration_s: float, tool: str, photo: bytes) -> dict[str, Any]:
    server = Server(f"architecture-{side}", _spec(cwd), BENCH_DIR / "results" / "raw" / "logs")
    upload = multipart_body(mnist_png(0))
    try:
        server.start()
        server.wait_ready()
        digit = Target(server.url + "/predict/digit", "POST", upload, multipart_content_type())
        entry = {
            "side": side,
            "pass": _load(server, Target(server.url + "/predict/pass?hours=4"), duration_s, tool),
            "digit": _load(server, digit, duration_s, tool),
        }
        sender = PhotoSender(server.url + "/predict/digit", photo)
        sender.start()
        try:
            entry["digit_with_photos"] = _load(server, digit, duration_s, tool)
        finally:
            sender.stop()
        entry["photos"] = sender.answers
        return entry
    finally:
        server.stop()


def run_architecture(rounds: int, duration_s: float, tool: str) -> dict[str, Any]:
    baseline = baseline_checkout()
    photo = photo_jpeg()
    sides = [("before", baseline), ("after", REPO_ROOT)]
    results = []
    for round_index in range(rounds):
        for side, cwd in sides if round_index % 2 == 0 else sides[::-1]:
            entry = {"round": round_index, **measure(side, cwd, duration_s, tool, photo)}
            results.append(entry)
            print(f"bench: architecture {entry}", file=sys.stderr, flush=True)
    return {
        "benchmark": "architecture",
        "baseline_commit": BASELINE_COMMIT,
        "config": {
            "rounds": rounds,
            "duration_s": duration_s,
            "level": LEVEL,
            "tool": tool,
            "photo_bytes": len(photo),
            "photo_pixels": PHOTO_SIZE[0] * PHOTO_SIZE[1],
            "cores": len(os.sched_getaffinity(0)),
        },
        "results": results,
    }


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


def summary(data: dict[str, Any]) -> list[list[str]]:
    """Rows of the before/after table: medians over rounds, the change, the target."""

    def side(name: str, pick: Any) -> float:
        return statistics.median([pick(r) for r in data["results"] if r["side"] == name])

    def photo_ratio(r: dict[str, Any]) -> float:
        return r["digit_with_photos"]["p99_ms"] / r["digit"]["p99_ms"]

    rows = []
    measures = [
        (
            "`GET /predict/pass`: server CPU per request (ms)",
            lambda r: r["pass"]["cpu_ms_per_req"],
            "at most +5%",
            1.05,
            "le",
        ),
        ("`GET /predict/pass`: req/s", lambda r: r["pass"]["rps"], "", None, ""),
        (
            "`POST /predict/digit` (28x28): req/s",
            lambda r: r["digit"]["rps"],
            "no lower",
            1.0,
            "ge",
        ),
        (
            "`POST /predict/digit`: server CPU per upload (ms)",
            lambda r: r["digit"]["cpu_ms_per_req"],
            "at most +10%",
            1.10,
            "le",
        ),
        ("`POST /predict/digit`: p99 (ms)", lambda r: r["digit"]["p99_ms"], "", None, ""),
        (
            "the same uploads, one 12-Mpx photo a second: p99 (ms)",
            lambda r: r["digit_with_photos"]["p99_ms"],
            "",
            None,
            "",
        ),
        ("p99 with photos / p99 without", photo_ratio, "after: at most 1.20", None, ""),
    ]
    for label, pick, target, bound, sense in measures:
        before, after = side("before", pick), side("after", pick)
        change = f"{(after / before - 1) * 100:+.1f}%" if before else "-"
        if bound is not None:
            met = after <= before * bound if sense == "le" else after >= before * bound
            target = f"{target}: {'met' if met else '**missed**'}"
        elif label.startswith("p99 with photos"):
            target = f"{target}: {'met' if after <= 1.20 else '**missed**'}"
        rows.append([label, _number(before), _number(after), change, target])
    photos = [s for r in data["results"] if r["side"] == "after" for s in r["photos"]]
    ok = sum(1 for status, _ in photos if status == 200)
    seconds = statistics.median([t for _, t in photos[1:]]) if len(photos) > 1 else 0.0
    rows.append(
        [
            "photos answered 200 (after)",
            "",
            f"{ok} of {len(photos)}",
            "",
            f"median {seconds:.2f} s each",
        ]
    )
    return rows
