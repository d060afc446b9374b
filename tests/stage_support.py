"""Jobs for the preprocessing stage's tests. They run in its worker processes, so they
live in a module those processes can import, and they talk back through files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from service.errors import InvalidImage

GATE_WAIT_S = 30.0


def rows_of(rows: list[bytes]) -> np.ndarray:
    """One row per input, holding the input's length."""
    return np.full((len(rows), 2), float(len(rows[0])), dtype=np.float32)


def prepare_or_fail(rows: list[bytes]) -> np.ndarray:
    if rows[0] == b"bad":
        raise InvalidImage("not an image")
    return rows_of(rows)


def logged(rows: list[str]) -> np.ndarray:
    """``[log, name]``: append ``name`` to the file ``log``, then answer."""
    with Path(rows[0]).open("a") as log:
        log.write(rows[1] + "\n")
    return rows_of([b"x"])


def gated(rows: list[str]) -> np.ndarray:
    """``[gate, log, name]``: wait until the file ``gate`` exists (a gate the test opens;
    polled, at most ``GATE_WAIT_S``), then log ``name``."""
    deadline = time.monotonic() + GATE_WAIT_S
    while not Path(rows[0]).exists() and time.monotonic() < deadline:
        time.sleep(0.005)  # the worker's own polling interval
    return logged(rows[1:])
