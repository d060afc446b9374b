"""Read and validate the ``hours,passed`` CSV of the pass model.

Every problem becomes a ``DataError`` (exit code 2) whose message is one line naming
the file and, where it applies, the line number.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from training.errors import DataError

COLUMNS = ("hours", "passed")


@dataclass(frozen=True)
class PassData:
    """Training points as float32 column tensors of shape [n, 1]."""

    hours: torch.Tensor
    passed: torch.Tensor
    source: Path

    def __len__(self) -> int:
        return int(self.hours.shape[0])


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {column} {text.strip()!r} is not a finite number")
    return value


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot read CSV: {error}") from None
    if header is None or not any(c.strip() for c in header):
        raise DataError(f"{path}: file is empty; expected a header 'hours,passed' and data rows")
    return [c.strip().lower() for c in header], rows


def load_pass_csv(path: Path) -> PassData:
    """Load ``path``; raise ``DataError`` on anything the model cannot be trained on."""
    header, rows = _read_rows(path)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected a header 'hours,passed', got {','.join(header)!r}"
        )
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    hours_at, passed_at = header.index("hours"), header.index("passed")
    hours: list[float] = []
    passed: list[float] = []
    for line, row in rows:
        where = f"{path}, line {line}"
        if len(row) <= max(hours_at, passed_at):
            raise DataError(f"{where}: expected {len(header)} fields, got {len(row)}")
        hour = _number(row[hours_at], "hours", where)
        label = _number(row[passed_at], "passed", where)
        if hour < 0:
            raise DataError(f"{where}: hours {row[hours_at].strip()!r} is negative")
        if label not in (0.0, 1.0):
            raise DataError(f"{where}: passed {row[passed_at].strip()!r} is not 0 or 1")
        hours.append(hour)
        passed.append(label)
    if len(set(passed)) < 2:
        only = "pass" if passed[0] == 1.0 else "fail"
        raise DataError(f"{path}: every row is a {only}; need both classes (0 and 1)")
    if len(set(hours)) < 2:
        raise DataError(f"{path}: every row has the same hours; need at least two values")
    return PassData(hours=_column(hours), passed=_column(passed), source=path)


def _column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)
