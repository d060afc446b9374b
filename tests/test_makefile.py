"""The Makefile's promises: help lists every target, and every dependency is pinned."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = re.compile(r"^([a-z][a-z-]*):(?!=)", re.MULTILINE)


def test_make_help_lists_every_target():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(TARGET.findall(makefile))
    helped = subprocess.run(
        ["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[1] for line in helped.splitlines() if line.startswith("make ")}
    assert listed == targets


def requirement_name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_dependency_of_serve_and_test():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in ("train", "torch", "dev"):
        wanted += project["optional-dependencies"][extra]
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[requirement_name(name)] = version
    for requirement in wanted:
        if "platform_machine != 'x86_64'" in requirement:
            continue  # the CPU-only onnxruntime of other platforms
        assert requirement_name(requirement) in pins, requirement
    assert "digitpass" not in pins
