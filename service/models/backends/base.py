"""The backend interface, and the error every backend raises."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class BackendError(RuntimeError):
    """A model file could not be loaded or run."""


class Backend(Protocol):
    """Runs a float32 batch ``[N, ...]`` through a model and returns ``[N, K]`` float32."""

    name: str
    device: str
    providers: tuple[str, ...]

    def run(self, batch: np.ndarray) -> np.ndarray: ...
