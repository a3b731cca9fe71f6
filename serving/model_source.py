"""Where the API gets its model: the MLflow registry by default, anything with the same two methods in tests."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from serving.state import ModelSlot
from triage.errors import ModelNotFoundError
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

    def __init__(self, settings: Settings, alias: str = "champion") -> None:
        self.settings = settings
        self.alias = alias
        # A dead tracking server must fail a poll in seconds, not after MLflow's default minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

    def current_version(self) -> str | None:
        """Version the alias points to now."""
        from triage.adapters import mlflow_registry as registry  # MLflow is imported only when it is used

        client = registry.configure(self.settings)
        return registry.alias_version(client, self.settings.mlflow.model_name, self.alias)

    def load(self) -> LoadedModel:
        """Load the aliased version with its test metrics."""
        from triage.adapters import mlflow_registry as registry

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


def public_reason(err: BaseException) -> str:
    """Why no model is served, for /readyz and 503 bodies: no URLs, no SQL, no paths; the log has the detail."""
    if isinstance(err, ModelNotFoundError):
        return "no model is registered as @champion yet: train one with `triage train`"
    text = str(err)
    names = {c.__name__ for c in type(err).__mro__}
    modules = {c.__module__.split(".")[0] for c in type(err).__mro__}
    if names & {"ConnectionError", "TimeoutError", "MaxRetryError", "NewConnectionError"} or any(
            s in text for s in ("Max retries exceeded", "Connection refused", "Failed to establish", "timed out",
                                "Name or service not known", "Temporary failure in name resolution")):
        return "the model registry is unreachable; retrying"
    if "sqlalchemy" in modules or "sqlite3" in modules:
        return "the model registry's store cannot be read; retrying"
    if isinstance(err, PermissionError):
        return "the model's files cannot be read (permission denied); retrying"
    return f"the model could not be loaded ({type(err).__name__}); retrying, see the server log"


class Reloader:
    """Polls the source and swaps the served model when the champion changes; never interrupts requests.

    Until a first model is served it retries on its own (every `retry_s`, even with polling off), so a server
    started while the registry is down serves once it is back, without a restart. Failures are logged once per
    change of state, never once per poll.
    """

    def __init__(self, source: ModelSource, slot: ModelSlot, policy: Policy, limits: TicketLimits,
                 interval_s: float, retry_s: float = 5.0) -> None:
        self.source, self.slot, self.policy, self.limits = source, slot, policy, limits
        self.interval_s = interval_s
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loading = threading.Lock()
        self._failing: str | None = None  # the last failure logged, to log only changes

    def load_now(self) -> bool:
        """Load the current version if it differs from the one served; True when a swap happened."""
        if not self._loading.acquire(blocking=False):
            return False  # another thread is loading right now
        try:
            version = self.source.current_version()
            served = self.slot.current
            if version is None:
                raise ModelNotFoundError("nothing registered as @champion")
            if served is not None and served.loaded.version == version:
                self._recovered()
                return False
            loaded = self.source.load()
            self.slot.install(loaded, self.policy, self.limits)
            self.slot.last_error = ""
            self._recovered()
            log.info("serving %s version %s", loaded.name, loaded.version)
            return True
        except Exception as err:  # a broken new model must leave the old one serving
            reason = public_reason(err)
            self.slot.last_error = reason
            detail = f"{type(err).__name__}: {str(err)[:300]}"
            if reason != self._failing:
                keeping = "keeping the current model" if self.slot.current is not None else "no model served yet"
                log.warning("model load failed (%s); %s: %s", reason, keeping, detail)
                self._failing = reason
            else:
                log.debug("model load still failing: %s", detail)
            return False
        finally:
            self._loading.release()

    def _recovered(self) -> None:
        if self._failing is not None:
            log.info("model registry reachable again")
            self._failing = None

    def start(self) -> None:
        """Poll in a daemon thread: every interval_s, or every retry_s until a first model is served."""
        if self.interval_s <= 0 and self.slot.current is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="model-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            waiting = self.slot.current is None
            if not waiting and self.interval_s <= 0:
                return
            if self._stop.wait(self.retry_s if waiting else self.interval_s):
                return
            self.load_now()
