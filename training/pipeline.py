"""One training run end to end: data, split, fit, evaluate, log to MLflow, register."""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from training.evaluate import confusion_figure, evaluate, predict_examples, reliability_figure
from triage.adapters import mlflow_registry as registry
from triage.data.schema import Example
from triage.data.splits import data_hash, split_examples
from triage.models.base import Classifier
from triage.settings import Settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

ModelKind = Literal["baseline", "transformer", "combined"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    classifier: Classifier
    run_id: str
    version: str | None
    promoted: bool
    metrics: dict[str, float]
    data_origin: str


def load_training_data(settings: Settings) -> tuple[list[Example], str]:
    """All shared datasets plus the shipped example tickets; only the examples when the datasets are absent."""
    from triage.data import sources

    if settings.datasets_dir and Path(settings.datasets_dir).is_dir():
        # The shipped tickets are ours and cover what no public set does (IP infringement, privacy).
        data = [*sources.load_all(Path(settings.datasets_dir)), *sources.load_examples()]
        return data, f"{settings.datasets_dir} + shipped example tickets"
    log.warning("no datasets directory found; training on the shipped example tickets")
    return sources.load_examples(), "shipped example tickets"


def code_version() -> str:
    """The git commit of the code that trained, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent, timeout=5, check=False)
        return (out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def fit_model(kind: ModelKind, train: list[Example], validation: list[Example], policy: Policy,
              params: Any = None, cache_dir: Path | None = None) -> tuple[Classifier, dict[str, Any]]:
    """Fit a classifier of the given kind; returns it with the parameters that were used."""
    if kind == "combined":
        from training import combined

        cp = params or combined.CombinedParams()
        if cp.embedding_cache is None and cache_dir is not None:
            cp.embedding_cache = str(cache_dir / "embeddings")
        return combined.fit(train, validation, policy, cp), asdict(cp)
    if kind == "baseline":
        from training import baseline

        bp = params or baseline.BaselineParams()
        return baseline.fit(train, validation, policy, bp), asdict(bp)
    from training import transformer

    tp = params or transformer.TransformerParams()
    return transformer.fit(train, validation, policy, tp), asdict(tp)


def train(
    settings: Settings,
    kind: ModelKind = "baseline",
    params: Any = None,
    examples: list[Example] | None = None,
    promote_if_first: bool = True,
    alias: str | None = None,
) -> TrainResult:
    """Train on the data's train split, evaluate on its test split, log to MLflow and register the model."""
    origin = "given examples"
    if examples is None:
        examples, origin = load_training_data(settings)
    splits = split_examples(examples)
    return train_on_splits(settings, kind, splits["train"], splits["validation"], splits["test"], params=params,
                           origin=origin, promote_if_first=promote_if_first, alias=alias)


def train_on_splits(
    settings: Settings,
    kind: ModelKind,
    train_set: list[Example],
    validation: list[Example],
    test: list[Example],
    params: Any = None,
    origin: str = "given examples",
    promote_if_first: bool = True,
    alias: str | None = None,
    nested: bool = False,
    extra_params: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit on given splits, evaluate on `test`, log params/metrics/figures/model to MLflow and register it."""
    policy = settings.load_policy()
    log.info("data: %d train, %d validation, %d test from %s", len(train_set), len(validation), len(test), origin)
    tags = {"model_kind": kind, "code_version": code_version(), "policy_version": policy.version}
    with registry.run(settings, name=f"train-{kind}", tags=tags, nested=nested) as run_id:
        started = time.perf_counter()
        classifier, used = fit_model(kind, train_set, validation, policy, params, settings.home / "cache")
        fit_seconds = time.perf_counter() - started
        registry.log_params({
            **used, **(extra_params or {}), "model_kind": kind, "data_origin": origin,
            "data_hash": data_hash(train_set), "n_train": len(train_set), "n_validation": len(validation),
            "n_test": len(test), "policy_name": policy.name, "policy_version": policy.version,
            "policy_digest": policy.digest, "code_version": tags["code_version"], "python": platform.python_version(),
        })
        registry.log_dict({"train_sources": dict(Counter(ex.source for ex in train_set)),
                           "test_sources": dict(Counter(ex.source for ex in test))}, "data/sources.json")

        prediction = predict_examples(classifier, test)
        metrics = evaluate(classifier, test, policy, prediction)
        metrics["fit_seconds"] = fit_seconds
        # What the fit measured on validation (e.g. ECE before/after calibration) goes to MLflow before the card
        # switches to test metrics.
        registry.log_metrics({k.replace("/", "."): float(v) for k, v in classifier.card.metrics.items()
                              if isinstance(v, int | float)}, prefix="fit.")
        classifier.card.metrics = {k: v for k, v in metrics.items() if "/" not in k}
        registry.log_metrics({k.replace("/", "."): v for k, v in metrics.items()}, prefix="test.")
        registry.log_metrics({k: float(v) for k, v in classifier.card.extra.items()
                              if isinstance(v, int | float) and not isinstance(v, bool)}, prefix="train.")
        registry.log_figure(confusion_figure(classifier, test, prediction), "figures/confusion_matrices.png")
        registry.log_figure(reliability_figure(classifier, test, prediction), "figures/reliability.png")
        registry.log_dict(classifier.card.__dict__, "model_card.json")

        client = registry.configure(settings)
        model_uri = registry.log_classifier(classifier, [ex.text for ex in test[:3]] or ["example"])
        name = settings.mlflow.model_name
        version = registry.register(client, model_uri, name, tags={"model_kind": kind, "run_id": run_id})
        promoted = False
        if alias:
            registry.set_alias(client, name, alias, version)
        if promote_if_first and registry.alias_version(client, name, registry.CHAMPION) is None:
            registry.set_alias(client, name, registry.CHAMPION, version)
            promoted = True
        log.info("registered %s version %s%s", name, version, " as @champion" if promoted else "")
    return TrainResult(classifier, run_id, version, promoted, metrics, origin)
