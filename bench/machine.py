"""The machine and the software under test, and who else was using the CPU."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Collection
from pathlib import Path

from bench import REPO_ROOT

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "python-multipart",
    "prometheus-client",
    "numpy",
    "pillow",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "torchvision",
    "httpx",
)
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()


def describe_machine() -> dict[str, object]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cores": cores,
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpu": _command_output(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]) or None,
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    wrk = _command_output(["wrk", "--version"]).splitlines()
    if wrk:
        versions["wrk"] = wrk[0].split(" [")[0].removeprefix("wrk ")
    return versions


def git_commit() -> str:
    """The last commit that touched service/ or training/, plus their uncommitted files.

    That is the code measured: commits elsewhere (bench/, docs/) do not change it.
    """
    commit = _command_output(["git", "log", "-1", "--format=%h", "--", "service", "training"])
    changed = _command_output(["git", "diff", "--name-only", "HEAD", "--", "service", "training"])
    new = _command_output(
        ["git", "ls-files", "--others", "--exclude-standard", "--", "service", "training"]
    )
    dirty = sorted({*changed.split(), *new.split()})
    return commit + (f" + uncommitted changes to {', '.join(dirty)}" if dirty else "")


def cpu_snapshot() -> dict[int, tuple[int, int, str]]:
    """Per process: (CPU ticks used so far, process group, command name)."""
    snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 of proc(5): pgrp is 5, utime 14, stime 15.
        snapshot[int(entry.name)] = (int(fields[11]) + int(fields[12]), int(fields[2]), name)
    return snapshot


def others_cpu(
    before: dict[int, tuple[int, int, str]],
    after: dict[int, tuple[int, int, str]],
    own_groups: Collection[int],
) -> dict[str, float]:
    """CPU seconds that processes outside ``own_groups`` used between two snapshots, by name."""
    used: dict[str, float] = {}
    for pid, (ticks, group, name) in after.items():
        if group in own_groups:
            continue
        start = before.get(pid, (0, group, name))[0]
        seconds = (ticks - start) / TICKS
        if seconds > 0:
            used[name] = used.get(name, 0.0) + seconds
    return {name: round(s, 2) for name, s in sorted(used.items(), key=lambda kv: -kv[1])}


def group_cpu_s(
    before: dict[int, tuple[int, int, str]], after: dict[int, tuple[int, int, str]], group: int
) -> float:
    """CPU seconds that the processes of one process group used between two snapshots."""
    ticks = sum(
        t - before.get(pid, (0, group, ""))[0] for pid, (t, g, _) in after.items() if g == group
    )
    return ticks / TICKS
