"""Where the API gets its model: the MLflow registry by default, anything with the same two methods in tests."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

from serving.state import ModelSlot
from triage.adapters import mlflow_registry as registry
from triage.models.base import MANIFEST, LoadedModel
from triage.models.io import load_classifier
from triage.scorer import TicketLimits
from triage.settings import Settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """Tells which version is current and loads it."""

    def current_version(self) -> str | None:
        """The version that should be served now (None when nothing is registered)."""
        ...

    def load(self) -> LoadedModel:
        """Load the version that should be served now."""
        ...


class RegistrySource:
    """`models:/<name>@champion` in the configured MLflow registry."""

    def __init__(self, settings: Settings, alias: str = registry.CHAMPION) -> None:
        self.settings = settings
        self.alias = alias

    def current_version(self) -> str | None:
        """Version the alias points to now."""
        client = registry.configure(self.settings)
        return registry.alias_version(client, self.settings.mlflow.model_name, self.alias)

    def load(self) -> LoadedModel:
        """Load the aliased version with its test metrics."""
        return registry.load_model(self.settings, self.alias)


class DirectorySource:
    """A classifier saved in a directory (`Classifier.save`), served without a registry; version = its card's."""

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.directory = directory
        self.threads = threads

    def current_version(self) -> str | None:
        """The directory's modification time stands in for a version, so a re-export is picked up."""
        manifest = self.directory / MANIFEST
        return f"dir-{int(manifest.stat().st_mtime)}" if manifest.is_file() else None

    def load(self) -> LoadedModel:
        """Load the classifier with its card metrics."""
        classifier = load_classifier(self.directory, threads=self.threads)
        version = self.current_version() or "dir"
        return LoadedModel(classifier, self.directory.name, version, "", None,
                           {f"test.{k}": v for k, v in classifier.card.metrics.items()})


class Reloader:
    """Polls the source and swaps the served model when the champion changes; never interrupts requests."""

    def __init__(self, source: ModelSource, slot: ModelSlot, policy: Policy, limits: TicketLimits,
                 interval_s: float) -> None:
        self.source, self.slot, self.policy, self.limits = source, slot, policy, limits
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load_now(self) -> bool:
        """Load the current version if it differs from the one served; True when a swap happened."""
        try:
            version = self.source.current_version()
            served = self.slot.current
            if version is None or (served is not None and served.loaded.version == version):
                return False
            loaded = self.source.load()
            self.slot.install(loaded, self.policy, self.limits)
            self.slot.last_error = ""
            log.info("serving %s version %s", loaded.name, loaded.version)
            return True
        except Exception as err:  # a broken new model must leave the old one serving
            self.slot.last_error = f"{type(err).__name__}: {err}"
            log.exception("model load failed; keeping the current model")
            return False

    def start(self) -> None:
        """Poll in a daemon thread every interval_s seconds (no thread when the interval is 0)."""
        if self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="model-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.load_now()
