"""Which versions of each model are loaded, discovered from the repository; hot reload.

The registry has no list of model names: every folder under the repository root is a
model. A scan brings each one to the versions its version policy admits
(``service.models.policy``; by default the highest version that verifies (sha256) and
warms up), off the request path, and reports what changed; the serving runtime then
swaps new versions in and retires those no longer admitted. A broken or half-copied
version is logged and skipped (``latest: N`` then takes the next version down), and is
retried only once its files change. A folder with no loadable version, a name that is
not allowed or a broken ``config.json`` is reported as unavailable with the reason, and
never stops the scan.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service.logs import log_event
from service.models.loaded import LoadedModel
from service.models.policy import PolicyError, VersionPolicy, read_policy
from service.models.repository import (
    ModelVersion,
    fingerprint,
    list_models,
    list_versions,
    name_problem,
    read_version,
)

logger = logging.getLogger(__name__)

Loader = Callable[[ModelVersion], LoadedModel]


@dataclass(frozen=True)
class LoadFailure:
    name: str
    version: int
    reason: str


@dataclass
class ScanReport:
    """What one scan did: versions newly loaded, versions unloaded, failures."""

    loaded: list[LoadedModel] = field(default_factory=list)
    unloaded: list[tuple[str, int]] = field(default_factory=list)  # no longer admitted
    failures: list[LoadFailure] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # model folders that are gone

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.unloaded or self.removed)


class ModelRegistry:
    def __init__(self, root: Path, *, backend: str, loader: Loader) -> None:
        self.root = root
        self._backend = backend
        self._loader = loader
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._policies: dict[str, VersionPolicy] = {}
        self._failed: dict[tuple[str, int], tuple[LoadFailure, tuple[tuple[str, int, int], ...]]] = {}
        self._unavailable: dict[str, str] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()

    def unavailable(self) -> dict[str, str]:
        """Model folders that serve nothing, with the reason."""
        return dict(self._unavailable)

    def policy(self, name: str) -> VersionPolicy:
        """The version policy ``name`` was last scanned with."""
        return self._policies.get(name, VersionPolicy())

    def skipped(self) -> list[LoadFailure]:
        """Every version now skipped, with its reason (not only this scan's)."""
        return [failure for failure, _ in self._failed.values()]

    def refuse(self, name: str, reason: str) -> None:
        """Stop serving ``name`` and skip it in later scans (a route collision)."""
        with self._lock:
            self._models.pop(name, None)
            self._refused[name] = reason
            self._unavailable[name] = reason
        log_event(logger, "model_refused", logging.ERROR, model=name, reason=reason)

    def scan(self) -> ScanReport:
        """Bring every model to its newest good version (runs in a worker thread)."""
        with self._lock:
            report = ScanReport()
            names = list_models(self.root)
            for name in set(self._models) - set(names):  # the folder was removed: unload
                del self._models[name]
                self._policies.pop(name, None)
                report.removed.append(name)
                log_event(logger, "model_removed", logging.WARNING, model=name)
            for name in set(self._unavailable) - set(names):
                del self._unavailable[name]
            for name in set(self._refused) - set(names):
                del self._refused[name]  # may come back under a name that no longer clashes
            for name in names:
                if name in self._refused:
                    continue
                problem = name_problem(name)
                if problem is not None:
                    self._note_unavailable(name, f"folder name refused: {problem}")
                    continue
                self._scan_one(name, report)
            return report

    def _scrub(self, reason: str) -> str:
        for prefix in {str(self.root.resolve()), str(self.root.absolute())}:
            reason = reason.replace(prefix, "<repository>")
        return reason

    def _note_unavailable(self, name: str, reason: str) -> None:
        if self._unavailable.get(name) != reason:
            self._unavailable[name] = reason
            log_event(logger, "model_unavailable", logging.ERROR, model=name, reason=reason)

    def _scan_one(self, name: str, report: ScanReport) -> None:
        current = self._models.get(name, {})
        try:
            policy = read_policy(self.root / name)
        except PolicyError as exc:  # keep what is served; nothing new until it is fixed
            if not current:
                self._note_unavailable(name, str(exc))
            else:
                log_event(logger, "model_config_invalid", logging.ERROR, model=name, reason=str(exc))
            return
        self._policies[name] = policy
        versions = list_versions(self.root / name)
        candidates, wanted = policy.candidates(versions)
        kept: dict[int, LoadedModel] = {}
        for version in candidates:
            if wanted is not None and len(kept) >= wanted:
                break
            if version in current:
                kept[version] = current[version]  # loaded already
                continue
            model = self._try_load(name, version, report, current)
            if model is not None:
                kept[version] = model
        for version in sorted(set(current) - set(kept)):
            report.unloaded.append((name, version))
            log_event(logger, "model_version_unloaded", model=name, version=version)
        if kept:
            self._models[name] = kept
            lowest = min(kept)
            for key in [k for k in self._failed if k[0] == name and k[1] <= lowest]:
                del self._failed[key]  # older than what is served: no longer in the way
            self._unavailable.pop(name, None)
            return
        self._models.pop(name, None)
        reason = "no loadable version" if versions else "no version folder"
        if versions and not candidates:
            reason = "the version policy admits no published version"
        self._note_unavailable(name, reason)

    def _try_load(
        self, name: str, version: int, report: ScanReport, current: dict[int, LoadedModel]
    ) -> LoadedModel | None:
        files = fingerprint(self.root / name / str(version))
        known = self._failed.get((name, version))
        if known is not None and known[1] == files:
            return None  # known bad and unchanged since
        serving = max(current) if current else None
        try:
            model = self._loader(read_version(self.root, name, version, self._backend))
        except Exception as exc:  # any failure disqualifies the version, never the service
            # Clients see the reason (/models, /admin/reload) without the repository's
            # absolute path; the log has it whole.
            failure = LoadFailure(name, version, self._scrub(str(exc)))
            self._failed[(name, version)] = (failure, files)
            report.failures.append(failure)
            log_event(
                logger,
                "model_version_skipped",
                logging.WARNING,
                model=name,
                version=version,
                reason=str(exc),
                path=str(self.root / name / str(version)),
                serving=serving,
            )
            return None
        report.loaded.append(model)
        log_event(
            logger,
            "model_loaded",
            model=name,
            version=version,
            previous=serving,
            backend=model.backend.name,
            device=model.backend.device,
            providers=list(model.backend.providers),
        )
        return model
