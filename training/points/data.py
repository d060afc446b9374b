"""Read and validate the ``hours,points`` CSV of the points model.

Every problem becomes a ``DataError`` (exit code 2) whose message is one line naming
the file and, where it applies, the line number (``training.table``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from training.errors import DataError
from training.table import read_numeric_csv

COLUMNS = ("hours", "points")
DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "points.csv"


@dataclass(frozen=True)
class PointsData:
    """Training points as float32 column tensors of shape [n, 1]."""

    hours: torch.Tensor
    points: torch.Tensor
    source: Path

    def __len__(self) -> int:
        return int(self.hours.shape[0])


def load_points_csv(path: Path) -> PointsData:
    """Load ``path``; raise ``DataError`` on anything a line cannot be fitted to."""
    hours: list[float] = []
    points: list[float] = []
    for row in read_numeric_csv(path, COLUMNS):
        if row.value["hours"] < 0:
            raise DataError(f"{row.where}: hours {row.text['hours']!r} is negative")
        hours.append(row.value["hours"])
        points.append(row.value["points"])
    if len(set(hours)) < 2:
        raise DataError(f"{path}: every row has the same hours; need at least two values")
    return PointsData(hours=_column(hours), points=_column(points), source=path)


def _column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)
