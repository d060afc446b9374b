"""``python -m bench``: run the serving, inference and training benchmarks, write the doc.

Results go to ``bench/results/{serving,inference,training}.json``; then
``docs/benchmarks.md`` is regenerated from whatever results are there.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR
from bench.machine import describe_machine, git_commit, package_versions

KINDS = (
    "serving",
    "inference",
    "training",
    "architecture",
    "protocol",
    "scaleup",
    "rayserve",
)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=KINDS, help="repeatable")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each level")
    parser.add_argument("--levels", type=_ints, default=(1, 16, 64, 256), help="e.g. 1,16,64")
    parser.add_argument("--rows", help="comma-separated row keys (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--low-load-rounds",
        type=int,
        default=6,
        help="alternating c=1 rounds of batching on vs off (0: none)",
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--batch-sizes", type=_ints, default=None, help="inference bench")
    parser.add_argument("--epochs", type=int, default=3, help="training bench epochs per arch")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="architecture bench: before/after rounds; protocol, scaleup and rayserve "
        "benches: interleaved rounds",
    )
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--snapshot", help="also save serving results as serving-NAME.json")
    parser.add_argument("--no-doc", action="store_true", help="do not regenerate the doc")
    parser.add_argument("--report", action="store_true", help="only regenerate the doc")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds, not minutes: ceiling + digitpass at c=16 for 1 s, 2 batch sizes, "
        "no training; results to bench/results/raw/smoke, no doc",
    )
    return parser


def _meta(command: str) -> dict[str, Any]:
    return {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "machine": describe_machine(),
        "versions": package_versions(),
        "git_commit": git_commit(),
    }


def _note_code_change(meta: dict[str, Any]) -> dict[str, Any]:
    """Record the code at the end too when it changed while the benchmark ran."""
    now = git_commit()
    if now != meta["git_commit"]:
        meta["git_commit_at_end"] = now
        print(f"bench: the code changed during the run: {now}", file=sys.stderr, flush=True)
    return meta


def _save(results_dir: Path, name: str, data: dict[str, Any]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"bench: wrote {path}", file=sys.stderr, flush=True)


def run_serving_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.serving import ServingConfig, run_serving

    rows = tuple(args.rows.split(",")) if args.rows else None
    config = ServingConfig(
        levels=args.levels,
        duration_s=args.duration,
        warmup_s=args.warmup,
        tool=args.loadgen,
        threads=args.threads,
        rows=rows,
        low_load_rounds=args.low_load_rounds,
    )
    command = (
        f"python -m bench --only serving --duration {args.duration:g} --warmup {args.warmup:g} "
        f"--levels {','.join(map(str, args.levels))}" + (f" --rows {args.rows}" if rows else "")
    )
    meta = _meta(command)  # before the run: the code and the time it started
    data = run_serving(config, results_dir / "raw" / "logs")
    data["meta"] = _note_code_change(meta)
    if "litserve" in data["config"]["rows"]:
        from bench.litserve_env import litserve_versions, venv_python

        data["meta"]["litserve_versions"] = litserve_versions(venv_python())
    _save(results_dir, "serving", data)
    if args.snapshot:
        _save(results_dir, f"serving-{args.snapshot}", data)
    return data


def run_inference_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.inference import BATCH_SIZES, MIN_TIME_S, run_inference

    sizes = args.batch_sizes or BATCH_SIZES
    flag = f" --batch-sizes {','.join(map(str, sizes))}" if args.batch_sizes else ""
    meta = _meta("python -m bench --only inference" + flag)
    data = run_inference(sizes, min_time_s=0.05 if args.smoke else MIN_TIME_S)
    data["meta"] = _note_code_change(meta)
    _save(results_dir, "inference", data)
    return data


def run_training_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.training import run_training

    meta = _meta(f"python -m bench --only training --epochs {args.epochs}")
    data = run_training(epochs=args.epochs)
    data["meta"] = _note_code_change(meta)
    _save(results_dir, "training", data)
    return data


def run_architecture_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.architecture import run_architecture

    tool = args.loadgen if args.loadgen != "auto" else "wrk"
    command = (
        f"python -m bench --only architecture --rounds {args.rounds} --duration {args.duration:g}"
    )
    meta = _meta(command)
    data = run_architecture(rounds=args.rounds, duration_s=args.duration, tool=tool)
    data["meta"] = _note_code_change(meta)
    _save(results_dir, "architecture", data)
    return data


def run_protocol_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.protocol import run_protocol

    keys = tuple(args.rows.split(",")) if args.rows else None
    command = (
        f"python -m bench --only protocol --duration {args.duration:g} "
        f"--warmup {args.warmup:g} --rounds {args.rounds}"
    )
    meta = _meta(command)
    logs = results_dir / "raw" / "logs"
    data = run_protocol(args.duration, args.warmup, logs, keys, rounds=args.rounds)
    data["meta"] = _note_code_change(meta)
    _save(results_dir, "protocol", data)
    return data


def _run_rounds_bench(
    kind: str, run: Any, args: argparse.Namespace, results_dir: Path
) -> dict[str, Any]:
    """A bench of interleaved rounds driven by a load generator (wrk unless chosen)."""
    tool = args.loadgen if args.loadgen != "auto" else "wrk"
    command = (
        f"python -m bench --only {kind} --rounds {args.rounds} --duration {args.duration:g} "
        f"--warmup {args.warmup:g}"
    )
    meta = _meta(command)
    data = run(args.rounds, args.duration, args.warmup, tool)
    data["meta"] = _note_code_change(meta)
    _save(results_dir, kind, data)
    return data


def run_scaleup_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.scaleup import run_scaleup

    return _run_rounds_bench("scaleup", run_scaleup, args, results_dir)


def run_rayserve_bench(args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    from bench.rayserve import run_rayserve

    return _run_rounds_bench("rayserve", run_rayserve, args, results_dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results_dir = args.results_dir or RESULTS_DIR
    kinds = args.only or list(KINDS)
    if args.smoke:
        args.duration, args.warmup, args.levels = 1.0, 0.0, (16,)
        args.rows = args.rows or "ceiling,asgi-ceiling,digitpass"
        args.batch_sizes = args.batch_sizes or (1, 2)
        args.no_doc = True
        results_dir = args.results_dir or RESULTS_DIR / "raw" / "smoke"
        kinds = args.only or ["serving", "inference"]
    if not args.report:
        runners = {
            "serving": run_serving_bench,
            "inference": run_inference_bench,
            "training": run_training_bench,
            "architecture": run_architecture_bench,
            "protocol": run_protocol_bench,
            "scaleup": run_scaleup_bench,
            "rayserve": run_rayserve_bench,
        }
        for kind in KINDS:
            if kind in kinds:
                runners[kind](args, results_dir)
    if not args.no_doc:
        from bench.report import write_doc

        print(f"bench: wrote {write_doc(results_dir)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so that every server it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
