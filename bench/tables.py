"""Markdown tables from the JSON results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ENDPOINT_TITLES = {
    "digit": "`POST /predict/digit` (28x28 MNIST PNG, multipart upload)",
    "pass": "`GET /predict/pass?hours=4`",
}


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub table; ``align`` has one ``l``/``r`` per column (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _errors(entry: dict[str, Any]) -> str:
    """``0``, or the total with its kinds: ``12 (non-2xx 2, timeout 10)``."""
    if not entry["errors"]:
        return "0"
    kinds = {"non-2xx": entry["non_2xx"], **entry.get("socket_detail", {})}
    detail = ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
    return f"{entry['errors']} ({detail})"


def serving_table(serving: dict[str, Any], endpoint: str, level: int) -> str:
    labels = {r["key"]: r["label"] for r in serving["rows"]}
    lines = []
    for entry in serving["results"]:
        if entry["concurrency"] != level:
            continue
        if "failed" in entry:
            if endpoint == "digit":
                lines.append([labels[entry["row"]], "failed", "", "", "", "", "", "", ""])
            continue
        if entry["endpoint"] != endpoint:
            continue
        lines.append(
            [
                labels[entry["row"]],
                _num(entry["rps"]),
                _num(entry.get("ratio"), 2),
                _num(entry.get("ratio_asgi"), 2),
                _num(entry["p50_ms"], 2),
                _num(entry["p99_ms"], 2),
                _errors(entry),
                _num(entry.get("mean_batch"), 2),
                _num(entry.get("server_cpu_ms_per_req"), 2),
            ]
        )
    header = [
        "row",
        "req/s",
        "x ceiling",
        "x ASGI ceiling",
        "p50 ms",
        "p99 ms",
        "errors",
        "mean batch",
        "server CPU ms/req",
    ]
    return table(header, lines)


def inference_table(inference: dict[str, Any]) -> str:
    columns: list[tuple[str, str, int]] = []
    values: dict[tuple[str, str, int, int], float] = {}
    for entry in inference["results"]:
        key = (entry["backend"], entry["device"], entry["threads"])
        if key not in columns:
            columns.append(key)
        values[(*key, entry["batch_size"])] = entry["samples_per_s"]
    sizes = sorted({e["batch_size"] for e in inference["results"]})
    header = ["batch size", *[f"{b} {d} {t} thr" for b, d, t in columns]]
    rows = [[size, *[_num(values.get((*c, size)), 0) for c in columns]] for size in sizes]
    return table(header, rows)


def training_table(training: dict[str, Any]) -> str:
    header = [
        "arch",
        "network",
        "epochs",
        "s/epoch",
        "test accuracy",
        "best epoch",
        "last-epoch test acc",
    ]
    rows = [
        [
            f"`{e['arch']}`",
            e["architecture"],
            e["epochs"],
            _num(e["seconds_per_epoch"], 1),
            f"{e['test_accuracy']:.4f}",
            e["best_epoch"],
            _num(e["last_epoch_test_accuracy"], 4),
        ]
        for e in training["results"]
    ]
    return table(header, rows, "llrrrrr")


def versions_table(versions: dict[str, str], litserve: dict[str, str] | None) -> str:
    names = sorted(set(versions) | set(litserve or {}))
    rows = [[n, versions.get(n, "—"), (litserve or {}).get(n, "—")] for n in names]
    return table(["package", "main venv", "LitServe venv"], rows, "lll")
