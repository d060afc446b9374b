"""Small numeric CSV files (the pass and points data), read and checked the same way.

Every problem becomes a ``DataError`` (exit code 2) whose message is one line naming
the file and, where it applies, the line number. The header names the columns (case
and surrounding blanks do not matter, extra columns are ignored); every value of the
wanted columns must be a finite number.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.errors import DataError


@dataclass(frozen=True)
class Row:
    """One data row: ``where`` ("<file>, line <n>"), and each wanted column's text and value."""

    where: str
    text: dict[str, str]
    value: dict[str, float]


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {column} {text.strip()!r} is not a finite number")
    return value


def _read_rows(path: Path, expected: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
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
        raise DataError(f"{path}: file is empty; expected a header {expected!r} and data rows")
    return [c.strip().lower() for c in header], rows


def read_numeric_csv(path: Path, columns: Sequence[str]) -> list[Row]:
    """The rows of ``path`` with a finite number in every one of ``columns``."""
    expected = ",".join(columns)
    header, rows = _read_rows(path, expected)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected a header {expected!r}, got {','.join(header)!r}"
        )
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    at = {column: header.index(column) for column in columns}
    table = []
    for line, row in rows:
        where = f"{path}, line {line}"
        if len(row) <= max(at.values()):
            raise DataError(f"{where}: expected {len(header)} fields, got {len(row)}")
        text = {column: row[index].strip() for column, index in at.items()}
        value = {column: _number(row[index], column, where) for column, index in at.items()}
        table.append(Row(where=where, text=text, value=value))
    return table
