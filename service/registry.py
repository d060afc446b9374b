"""Which version of each model is being served, and hot reload.

A reload scans the repository and, for each model, loads the highest version
that verifies (sha256) and warms up, off the request path. It is then swapped in
with one reference assignment: a batch that already holds the old model finishes
on it, and the next batch uses the new one. A broken or half-copied version is
logged and skipped, and is retried only once its files change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from service.errors import ModelNotReady
from service.logs import log_event
from service.model import LoadedModel
from service.repository import ModelVersion, fingerprint, list_versions, read_version

logger = logging.getLogger(__name__)

Loader = Callable[[ModelVersion], LoadedModel]


@dataclass(frozen=True)
class LoadFailure:
    name: str
    version: int
    reason: str


class ModelRegistry:
    def __init__(
        self,
        root: Path,
        names: Iterable[str],
        *,
        backend: str,
        loader: Loader,
        on_loaded: Callable[[LoadedModel], None] = lambda model: None,
        on_failed: Callable[[LoadFailure], None] = lambda failure: None,
    ) -> None:
        self.root = root
        self.names = tuple(names)
        self._backend = backend
        self._loader = loader
        self._on_loaded = on_loaded
        self._on_failed = on_failed
        self._models: dict[str, LoadedModel] = {}
        self._failed: dict[tuple[str, int], tuple[tuple[str, int, int], ...]] = {}
        self._reload_lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            raise ModelNotReady(f"model '{name}' is not loaded")
        return model

    def loaded(self) -> dict[str, LoadedModel]:
        return dict(self._models)

    @property
    def ready(self) -> bool:
        return all(name in self._models for name in self.names)

    def reload(self) -> list[LoadFailure]:
        """Bring every model to its newest good version. Returns this scan's failures."""
        with self._reload_lock:
            failures: list[LoadFailure] = []
            for name in self.names:
                failures.extend(self._reload_one(name))
            return failures

    def _reload_one(self, name: str) -> list[LoadFailure]:
        current = self._models.get(name)
        failures = []
        for version in list_versions(self.root, name):
            if current is not None and version == current.version.version:
                return failures  # the newest good version is already served
            files = fingerprint(self.root, name, version)
            if self._failed.get((name, version)) == files:
                continue  # known bad and unchanged since
            try:
                model = self._loader(read_version(self.root, name, version, self._backend))
            except Exception as exc:  # any failure disqualifies the version, never the service
                self._failed[(name, version)] = files
                failure = LoadFailure(name, version, str(exc))
                failures.append(failure)
                log_event(
                    logger,
                    "model_version_skipped",
                    logging.WARNING,
                    model=name,
                    version=version,
                    reason=str(exc),
                    serving=current.version.version if current else None,
                )
                self._on_failed(failure)
                continue
            self._models[name] = model  # atomic swap
            self._failed.pop((name, version), None)
            log_event(
                logger,
                "model_loaded",
                model=name,
                version=version,
                previous=current.version.version if current else None,
                backend=model.backend.name,
                device=model.backend.device,
                providers=list(model.backend.providers),
            )
            self._on_loaded(model)
            return failures
        if current is None:
            log_event(logger, "model_unavailable", logging.ERROR, model=name, root=str(self.root))
        return failures
