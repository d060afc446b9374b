"""Read and validate the ``hours,passed`` CSV of the pass model.

Every problem becomes a ``DataError`` (exit code 2) whose message is one line naming
the file and, where it applies, the line number (``training.table``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from training.errors import DataError
from training.table import read_numeric_csv

COLUMNS = ("hours", "passed")
DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "hours.csv"


@dataclass(frozen=True)
class PassData:
    """Training points as float32 column tensors of shape [n, 1]."""

    hours: torch.Tensor
    passed: torch.Tensor
    source: Path

    def __len__(self) -> int:
        return int(self.hours.shape[0])


def load_pass_csv(path: Path) -> PassData:
    """Load ``path``; raise ``DataError`` on anything the model cannot be trained on."""
    hours: list[float] = []
    passed: list[float] = []
    for row in read_numeric_csv(path, COLUMNS):
        hour, label = row.value["hours"], row.value["passed"]
        if hour < 0:
            raise DataError(f"{row.where}: hours {row.text['hours']!r} is negative")
        if label not in (0.0, 1.0):
            raise DataError(f"{row.where}: passed {row.text['passed']!r} is not 0 or 1")
        hours.append(hour)
        passed.append(label)
    if len(set(passed)) < 2:
        only = "pass" if passed[0] == 1.0 else "fail"
        raise DataError(f"{path}: every row is a {only}; need both classes (0 and 1)")
    if len(set(hours)) < 2:
        raise DataError(f"{path}: every row has the same hours; need at least two values")
    return PassData(hours=column(hours), passed=column(passed), source=path)


def column(values: list[float]) -> torch.Tensor:
    """``values`` as a float32 column tensor [n, 1]."""
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)
