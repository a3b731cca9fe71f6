"""Shared fixtures: a small real baseline trained on the shipped example tickets, the default policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests that want Label Studio turn the review queue on explicitly; elsewhere it would retry 127.0.0.1:8089.
os.environ["TRIAGE_LABELSTUDIO__ENABLED"] = "false"

from triage.data.sources import load_examples
from triage.models.base import Classifier, LoadedModel
from triage.settings import Settings
from triage.taxonomy import Policy, load_policy


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The shared public datasets; skipped where they are absent, except in CI, where their absence fails."""
    datasets = Settings().datasets_dir
    if datasets is None or not Path(datasets).is_dir():
        message = "the shared datasets are absent: put ../shared beside the project or set TRIAGE_DATASETS_DIR"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(datasets)


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The shipped default policy."""
    return load_policy()


@pytest.fixture(scope="session")
def tiny_classifier(policy: Policy) -> Classifier:
    """A real baseline fitted in about a second on the example tickets the package ships."""
    from training.baseline import BaselineParams, fit
    from triage.data.splits import split_examples

    splits = split_examples(load_examples())
    return fit(splits["train"], splits["validation"], policy, BaselineParams(min_df=1, n_jobs=1))


@pytest.fixture(scope="session")
def tiny_loaded(tiny_classifier: Classifier) -> LoadedModel:
    """The tiny classifier as if it came from the registry."""
    return LoadedModel(tiny_classifier, "triage", "1", "champion", None, {"test.macro_f1": 0.5})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temporary home (own SQLite MLflow store)."""
    return Settings(home=tmp_path / "home", env="test", _env_file=None)  # type: ignore[call-arg]


# Texts the tests send as ticket text or metadata so that a log line quoting them would be caught.
PRIVATE_MARKERS = ("zq-marker-7f3a-never-in-a-log", "zq-private-ticket-text-0042")


@pytest.fixture(scope="session", autouse=True)
def _no_ticket_text_in_the_run_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every log record of the whole run, formatted as the server formats it, must hold no ticket text."""
    import logging

    from serving.observability import RequestIdFilter, SafeFormatter

    path = tmp_path_factory.mktemp("run-log") / "run.log"
    handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    handler.close()
    text = path.read_text(encoding="utf-8")
    leaked = [m for m in PRIVATE_MARKERS if m in text]
    assert not leaked, f"ticket text reached the log ({path}): {leaked}"
