"""The issue's targets, judged from serving results (at concurrency 64, 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TARGET_LEVEL = 64
DIGIT_CEILING_SHARE = 0.70
PASS_CEILING_SHARE = 0.80
DIGIT_P99_MS = 50.0
LOW_LOAD_TOLERANCE = 1.05  # batching on may be at most 5% slower at p50 than off, at c=1


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def _index(serving: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {
        (r["row"], r["endpoint"], r["concurrency"]): r for r in serving["results"] if "rps" in r
    }


def _ahead(index: dict[tuple[str, str, int], dict[str, Any]], peer: str, label: str) -> Verdict:
    ours = index.get(("digitpass", "digit", TARGET_LEVEL))
    theirs = index.get((peer, "digit", TARGET_LEVEL))
    target = f"`/predict/digit` ahead of {label} on req/s and p99"
    if ours is None or theirs is None:
        return Verdict(target, "not measured", None)
    met = ours["rps"] > theirs["rps"] and ours["p99_ms"] < theirs["p99_ms"]
    measured = (
        f"{ours['rps']:.0f} vs {theirs['rps']:.0f} req/s; "
        f"p99 {ours['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms"
    )
    return Verdict(target, measured, met)


def evaluate(serving: dict[str, Any]) -> list[Verdict]:
    """One verdict per target, in the issue's order."""
    index = _index(serving)
    verdicts = []
    digit = index.get(("digitpass", "digit", TARGET_LEVEL))
    target = (
        f"`/predict/digit` >= {DIGIT_CEILING_SHARE:.0%} of the (FastAPI) upload ceiling's req/s"
    )
    if digit is None or digit.get("ratio") is None:
        verdicts.append(Verdict(target, "not measured", None))
    else:
        measured = f"{digit['ratio']:.0%} ({digit['rps']:.0f} req/s)"
        verdicts.append(Verdict(target, measured, digit["ratio"] >= DIGIT_CEILING_SHARE))
    target = f"`/predict/digit` p99 <= {DIGIT_P99_MS:.0f} ms"
    if digit is None:
        verdicts.append(Verdict(target, "not measured", None))
    else:
        met = digit["p99_ms"] <= DIGIT_P99_MS
        verdicts.append(Verdict(target, f"{digit['p99_ms']:.1f} ms", met))
    verdicts.append(_ahead(index, "naive", "the naive baseline"))
    verdicts.append(_ahead(index, "litserve", "LitServe"))
    passed = index.get(("digitpass", "pass", TARGET_LEVEL))
    target = f"`/predict/pass` >= {PASS_CEILING_SHARE:.0%} of the (FastAPI) GET ceiling's req/s"
    if passed is None or passed.get("ratio") is None:
        verdicts.append(Verdict(target, "not measured", None))
    else:
        measured = f"{passed['ratio']:.0%} ({passed['rps']:.0f} req/s)"
        verdicts.append(Verdict(target, measured, passed["ratio"] >= PASS_CEILING_SHARE))
    verdicts.append(_zero_errors(serving))
    verdicts.append(_low_load(serving, index))
    return verdicts


def _zero_errors(serving: dict[str, Any]) -> Verdict:
    ours = [r for r in serving["results"] if r["row"].startswith("digitpass")]
    errors = sum(r.get("errors", 0) for r in ours)
    failed = [r for r in ours if "failed" in r]
    target = "zero errors at every level (every digitpass row)"
    if not ours:
        return Verdict(target, "not measured", None)
    measured = f"{errors} errors in {len(ours)} runs" + (
        f", {len(failed)} failed" if failed else ""
    )
    return Verdict(target, measured, errors == 0 and not failed)


def _low_load(
    serving: dict[str, Any], index: dict[tuple[str, str, int], dict[str, Any]]
) -> Verdict:
    """From the alternating c=1 rounds when the run has them, else from the c=1 level."""
    target = (
        "latency at concurrency 1 no worse with batching on than off "
        f"(p50 within {LOW_LOAD_TOLERANCE - 1:.0%})"
    )
    rounds = serving.get("low_load")
    parts, met = [], True
    for endpoint in ("digit", "pass"):
        if rounds:
            by = {(r["row"], r["endpoint"]): r["median_p50_ms"] for r in rounds["results"]}
            on, off = by.get(("digitpass", endpoint)), by.get(("digitpass-batch1", endpoint))
        else:
            a = index.get(("digitpass", endpoint, 1))
            b = index.get(("digitpass-batch1", endpoint, 1))
            on, off = (a["p50_ms"], b["p50_ms"]) if a and b else (None, None)
        if on is None or off is None:
            return Verdict(target, "not measured", None)
        parts.append(f"{endpoint}: p50 {on:.2f} on vs {off:.2f} ms off")
        met = met and on <= off * LOW_LOAD_TOLERANCE
    how = f"median of {rounds['rounds']} alternating rounds; " if rounds else ""
    return Verdict(target, how + "; ".join(parts), met)
