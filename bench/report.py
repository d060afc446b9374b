"""``docs/benchmarks.md``, generated from ``bench/results/*.json`` (and ``bench/notes.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import BENCH_DIR, DOC_PATH, RESULTS_DIR
from bench.reading import inference_reading, others_load, serving_reading, training_reading
from bench.tables import (
    ENDPOINT_TITLES,
    inference_table,
    serving_table,
    table,
    training_table,
    versions_table,
)
from bench.targets import TARGET_LEVEL, evaluate

NOTES_PATH = BENCH_DIR / "notes.md"
VERDICT = {True: "met", False: "**missed**", None: "not measured"}


def load(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _machine(meta: dict[str, Any], serving: dict[str, Any] | None) -> str:
    machine = meta["machine"]
    lines = [
        f"- CPU: {machine['cpu_model']}, {machine['cores']} cores; "
        f"memory {machine['memory_gib']} GiB; GPU: {machine['gpu'] or 'none'}",
        f"- {machine['os']}, Python {machine['python']}; service and training code at "
        f"commit {meta['git_commit']}",
    ]
    if meta.get("git_commit_at_end"):
        lines.append(
            f"- **The code changed while this ran**; at the end: {meta['git_commit_at_end']}"
        )
    if serving is not None:
        mean, peak, top = others_load(serving)
        lines.append(
            f"- Other processes on the machine used {mean:.2f} cores on average (peak "
            f"{peak:.2f}) while the serving benchmark measured; the busiest: {', '.join(top)}"
        )
    return "\n".join(lines)


def _serving(serving: dict[str, Any]) -> list[str]:
    meta, config = serving["meta"], serving["config"]
    parts = [
        "## Serving",
        f"Reproduce: `{meta['command']}` (or `make bench`). Load generator: "
        f"{config['tool']}, {config['threads']} thread(s), connections = concurrency, "
        f"{config['duration_s']:g} s per level after a {config['warmup_s']:g} s warm-up, "
        f"run {meta['created_at']}. Each row's server is started fresh for each level, "
        "on loopback; at each level every row runs in turn before the next level starts. "
        "`x ceiling` divides by the upload ceiling (digit) or the GET ceiling (pass) "
        "measured at the same level: the issue's ceiling, a FastAPI app that reads the "
        "request and answers a constant. digitpass answers its two hot routes ahead of "
        "FastAPI's routing, so it can pass that; `x ASGI ceiling` divides by the plain-ASGI "
        "app that reads the request with digitpass's own parsers, the bound for that path. "
        "`mean batch` is rows per inference call from "
        "digitpass's `/metrics` (not for 2 workers: each process counts its own). "
        "`server CPU ms/req` is the CPU time of all the server's processes and threads "
        "divided by the requests served: steadier than req/s on a shared machine.",
        _bullets(
            [
                f"**{r['label']}** (`{r['key']}`){': ' + r['notes'] if r['notes'] else ''}"
                for r in serving["rows"]
            ]
        ),
    ]
    for endpoint in ("digit", "pass"):
        parts.append(f"### {ENDPOINT_TITLES[endpoint]}")
        for level in config["levels"]:
            parts += [f"Concurrency {level}:", serving_table(serving, endpoint, level)]
    low = serving.get("low_load")
    if low:
        parts += [
            "### Concurrency 1, batching on vs off, alternating rounds",
            f"{low['rounds']} rounds of {low['duration_s']:g} s per server and endpoint, "
            "against two servers of each configuration that stay up (started on, off, off, "
            "on), the order flipped every round; medians over both instances. At "
            "concurrency 1 a batch always holds one request, so only the batcher's own cost "
            "can differ.",
            table(
                ["row", "endpoint", "median p50 ms", "median p99 ms", "errors", "p50 per round"],
                [
                    [
                        r["row"],
                        r["endpoint"],
                        f"{r['median_p50_ms']:.3f}",
                        f"{r['median_p99_ms']:.3f}",
                        r["errors"],
                        " ".join(f"{v:.2f}" for v in r["p50_ms"]),
                    ]
                    for r in low["results"]
                ],
                "llrrrl",
            ),
        ]
    return parts


def _history(results_dir: Path) -> list[str]:
    snapshots = [
        json.loads(p.read_text()) | {"_name": p.stem.removeprefix("serving-")}
        for p in results_dir.glob("serving-*.json")
    ]
    snapshots.sort(key=lambda d: d["meta"]["created_at"])
    rows = []
    for data in snapshots:
        commit = data["meta"]["git_commit"]
        if data["meta"].get("git_commit_at_end"):
            commit += f" (at the end: {data['meta']['git_commit_at_end']})"
        cells = [data["_name"], data["meta"]["created_at"], commit]
        for endpoint in ("digit", "pass"):
            entry = next(
                (
                    r
                    for r in data["results"]
                    if r.get("endpoint") == endpoint
                    and r["row"] == "digitpass"
                    and r["concurrency"] == TARGET_LEVEL
                ),
                None,
            )
            if entry is None:
                cells += ["—"] * 4
                continue
            cpu = entry.get("server_cpu_ms_per_req")
            cells += [
                f"{entry['rps']:.0f}",
                f"{entry['ratio']:.2f}",
                f"{entry['p99_ms']:.1f}",
                "—" if cpu is None else f"{cpu:.2f}",
            ]
        rows.append(cells)
    if not rows:
        return []
    header = [
        "snapshot",
        "run",
        "code",
        "digit req/s",
        "x ceiling",
        "p99 ms",
        "CPU ms/req",
        "pass req/s",
        "x ceiling",
        "p99 ms",
        "CPU ms/req",
    ]
    return [
        f"## Snapshots (digitpass defaults, concurrency {TARGET_LEVEL})",
        "Saved with `--snapshot NAME`; each is a whole interleaved run, so its ratios are "
        "to the ceiling measured in that run.",
        table(header, rows, "lll" + "r" * 8),
    ]


def _architecture(data: dict[str, Any]) -> list[str]:
    from bench.architecture import summary

    config = data["config"]
    rounds = [
        [
            str(r["round"]),
            r["side"],
            f"{r['pass']['rps']:.0f}",
            f"{r['pass']['cpu_ms_per_req']:.4f}",
            f"{r['digit']['rps']:.0f}",
            f"{r['digit']['cpu_ms_per_req']:.4f}",
            f"{r['digit']['p99_ms']:.1f}",
            f"{r['digit_with_photos']['p99_ms']:.1f}",
            str(r["pass"]["errors"] + r["digit"]["errors"] + r["digit_with_photos"]["errors"]),
        ]
        for r in data["results"]
    ]
    return [
        "## Serving architecture: before and after",
        f'Reproduce: `{data["meta"]["command"]}`. "Before" is the service at commit '
        f"{data['baseline_commit']} (the release before one HTTP pipeline and the "
        'preprocessing stage), unpacked from git and run from there; "after" is this '
        f"checkout. {config['rounds']} rounds, each starting both sides fresh in alternating "
        f"order; {config['duration_s']:g} s per load at concurrency {config['level']} with "
        f"{config['tool']}; the photo is a {config['photo_pixels'] / 1e6:.0f}-megapixel JPEG "
        f"of {config['photo_bytes'] / 1e6:.1f} MB. Medians over the rounds:",
        table(["measure", "before", "after", "change", "target"], summary(data), "lrrrl"),
        "Every round:",
        table(
            [
                "round",
                "side",
                "pass req/s",
                "pass CPU ms",
                "digit req/s",
                "digit CPU ms",
                "digit p99 ms",
                "with photos p99 ms",
                "errors",
            ],
            rounds,
            "ll" + "r" * 7,
        ),
    ]


def _protocol(data: dict[str, Any]) -> list[str]:
    from bench.protocol import protocol_table

    config = data["config"]
    return [
        "## Open Inference Protocol (V2 REST and gRPC)",
        f"Reproduce: `{data['meta']['command']}`. One digitpass server (defaults, gRPC on), "
        f"the digit model; every row at concurrency {config['concurrency']} closed-loop "
        f"clients for {config['duration_s']:g} s after a {config['warmup_s']:g} s warm-up, "
        f"in {config.get('rounds', 1)} interleaved rounds (every row, then every row again); "
        "each row shows its median round, and every round's req/s. On loopback, client and "
        "server on the same 2 cores, shared with other work: the rounds show the spread. REST "
        "rows are driven by wrk; gRPC rows by a grpc.aio client process "
        "(`bench/grpcload.py`), whose own CPU use is higher than wrk's. Samples/s = req/s x "
        "rows per request; tensors are normalised MNIST test images, PNGs are MNIST test "
        "image 0. `mean batch` is rows per inference call, from `/metrics`.",
        protocol_table(data),
        *_protocol_reading(data),
    ]


def _scaleup(data: dict[str, Any]) -> list[str]:
    from bench.scaleup import summary

    config = data["config"]
    rounds = [
        [
            str(r["round"]),
            r["side"],
            f"{r['rps']:.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['server_cores']:.2f}",
            str(r["errors"]),
        ]
        for r in data["results"]
    ]
    return [
        "## Scale-up: every core by default",
        f"Reproduce: `{data['meta']['command']}`. The default `make serve` "
        f"(`workers=auto`: {config['cores']} workers here) against the same defaults under "
        f"`taskset -c 0`; `POST /predict/digit` (a 28x28 PNG) at concurrency "
        f"{config['level']} with {config['tool']}, {config['duration_s']:g} s after a "
        f"{config['warmup_s']:g} s warm-up; {config['rounds']} rounds, each starting both "
        "sides fresh in alternating order. The load generator shares the machine, unconfined, "
        "both times. Medians over the rounds:",
        table(["measure", "default", "one core", "ratio", "target"], summary(data), "lrrrl"),
        "Every round:",
        table(
            ["round", "side", "req/s", "p50 ms", "p99 ms", "server cores", "errors"],
            rounds,
            "ll" + "r" * 5,
        ),
    ]


def _rayserve(data: dict[str, Any]) -> list[str]:
    from bench.rayserve import summary, verdicts

    config = data["config"]
    return [
        "## Ray Serve: digitpass on Ray, direct, and Ray's documented pattern",
        f"Reproduce: `{data['meta']['command']}`. `direct` is the default `make serve`; "
        f"`ray` is `make serve-ray`'s command with {config['replicas']} replicas of 1 CPU "
        "(a local loopback cluster), digitpass's own batcher in each; `ray-baseline` is "
        "`bench/ray_baseline_app.py`: a FastAPI ingress, `@serve.batch` (64 rows, 5 ms "
        f"wait), PIL decoding in the handler, the same ONNX model, {config['replicas']} "
        "replicas. `POST /predict/digit` (a 28x28 PNG) with "
        f"{config['tool']}, {config['duration_s']:g} s per level after a "
        f"{config['warmup_s']:g} s warm-up, {config['rounds']} rounds in alternating order. "
        "Medians over the rounds; server CPU per request at concurrency 64 by process "
        "(proxy: Ray's HTTP proxy actor; replicas: the replica actors; workers: "
        "digitpass's preprocessing processes or direct's server workers; ray-system: "
        "raylet, GCS, controller, dashboard and the rest):",
        table(
            [
                "side",
                "req/s c=64",
                "p50 ms c=64",
                "p99 ms c=64",
                "p50 ms c=1",
                "req/s c=1",
                "errors",
                "server CPU ms per request, c=64",
            ],
            summary(data),
            "lrrrrrrl",
        ),
        _bullets(verdicts(data)),
    ]


def _protocol_reading(data: dict[str, Any]) -> list[str]:
    by = {r["row"]: r for r in data["results"]}
    need = (
        "predict-digit",
        "v2-rest-binary",
        "v2-rest-png",
        "v2-grpc",
        "v2-rest-binary-64",
        "v2-grpc-64",
        "predict-digits-64",
    )
    if not all(k in by for k in need):
        return []
    lines = [
        f"A normalised tensor over V2 REST skips decoding and preprocessing: "
        f"{by['v2-rest-binary']['samples_per_s']:.0f} samples/s against "
        f"{by['predict-digit']['samples_per_s']:.0f} for `/predict/digit`. A PNG in a BYTES "
        f"tensor goes through the same preprocessing stage as `/predict/digit` "
        f"({by['v2-rest-png']['samples_per_s']:.0f} samples/s). The one-image gRPC row "
        f"({by['v2-grpc']['samples_per_s']:.0f} samples/s, mean batch "
        f"{by['v2-grpc']['mean_batch']}) is bound by the server process: in a 4 s check "
        "its main process used a whole core (about 0.44 ms of CPU per call; the grpc.aio "
        "client used 39% of one), so the event loop takes calls a few at a time and "
        "batches stay small; REST's single-tensor requests cost the same process less.",
        f"With 64 tensors per request, one inference call per request: "
        f"{by['v2-rest-binary-64']['samples_per_s']:.0f} samples/s over REST, "
        f"{by['v2-grpc-64']['samples_per_s']:.0f} over gRPC, against "
        f"{by['predict-digits-64']['samples_per_s']:.0f} for `/predict/digits` with 64 PNGs "
        "(each decoded and preprocessed).",
    ]
    return [_bullets(lines)]


def render(results_dir: Path = RESULTS_DIR) -> str:
    serving = load(results_dir, "serving")
    inference = load(results_dir, "inference")
    training = load(results_dir, "training")
    first = next((r for r in (serving, inference, training) if r is not None), None)
    parts = [
        "# Benchmarks",
        "Generated by `python -m bench` from `bench/results/*.json`; do not edit by hand "
        "(notes go in `bench/notes.md`). The issue's targets are for concurrency "
        f"{TARGET_LEVEL} on this 2-core machine.",
    ]
    if first is not None:
        parts += ["## Machine", _machine(first["meta"], serving)]
        litserve = serving["meta"].get("litserve_versions") if serving else None
        parts += ["### Packages", versions_table(first["meta"]["versions"], litserve)]
    if serving is not None:
        verdicts = [[v.target, v.measured, VERDICT[v.met]] for v in evaluate(serving)]
        parts += [
            f"## Targets (concurrency {TARGET_LEVEL})",
            table(["target", "measured", "verdict"], verdicts, "lll"),
        ]
        parts += [
            "## What the numbers mean",
            _bullets(
                serving_reading(serving)
                + (inference_reading(inference) if inference else [])
                + (training_reading(training) if training else [])
            ),
        ]
        parts += _serving(serving)
    if inference is not None:
        parts += [
            "## Inference micro-benchmark",
            f"Reproduce: `{inference['meta']['command']}`. Model {inference['model']} "
            f"({inference['architecture']}) through the service's own backends, with one "
            f"intra-op thread per core ({inference.get('cores')} threads) and with 1; the "
            f"service's default for 1 worker is {inference['service_threads']}. "
            "Samples/s come from the median of timed calls "
            f"(at least {inference['min_time_s']:g} s per point).",
            inference_table(inference),
        ]
    if training is not None:
        parts += [
            "## Training benchmark",
            f"Reproduce: `{training['meta']['command']}`. {training['epochs']} epochs per "
            f"architecture on the CPU (the trainer's default is {training.get('default_epochs')}), "
            "published into a "
            "temporary repository; seconds per epoch include the per-epoch evaluation.",
            training_table(training),
        ]
    protocol = load(results_dir, "protocol")
    if protocol is not None:
        parts += _protocol(protocol)
    architecture = load(results_dir, "architecture")
    if architecture is not None:
        parts += _architecture(architecture)
    scaleup = load(results_dir, "scaleup")
    if scaleup is not None:
        parts += _scaleup(scaleup)
    rayserve = load(results_dir, "rayserve")
    if rayserve is not None:
        parts += _rayserve(rayserve)
    parts += _history(results_dir)
    if NOTES_PATH.is_file():
        parts += ["## Notes", NOTES_PATH.read_text().strip()]
    return "\n\n".join(parts) + "\n"


def write_doc(results_dir: Path = RESULTS_DIR, doc: Path = DOC_PATH) -> Path:
    doc.write_text(render(results_dir))
    return doc
