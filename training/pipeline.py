"""One training run end to end: data, split, fit, evaluate, log to MLflow, register."""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from training.evaluate import confusion_figure, evaluate, predict_examples
from triage.adapters import mlflow_registry as registry
from triage.data.schema import Example
from triage.data.splits import data_hash, split_examples
from triage.models.base import Classifier
from triage.settings import Settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

ModelKind = Literal["baseline", "transformer"]


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
    """All shared datasets when they are present, else the small example set the package ships."""
    from triage.data import sources

    if settings.datasets_dir and Path(settings.datasets_dir).is_dir():
        return sources.load_all(Path(settings.datasets_dir)), str(settings.datasets_dir)
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
              params: Any = None) -> tuple[Classifier, dict[str, Any]]:
    """Fit a classifier of the given kind; returns it with the parameters that were used."""
    if kind == "baseline":
        from training import baseline

        bp = params or baseline.BaselineParams()
        return baseline.fit(train, validation, policy, bp), bp.as_dict()
    from training import transformer

    tp = params or transformer.TransformerParams()
    return transformer.fit(train, validation, policy, tp), tp.as_dict()


def train(
    settings: Settings,
    kind: ModelKind = "baseline",
    params: Any = None,
    examples: list[Example] | None = None,
    promote_if_first: bool = True,
    alias: str | None = None,
) -> TrainResult:
    """Train, evaluate on the test split, log everything to MLflow and register the model."""
    policy = settings.load_policy()
    origin = "given examples"
    if examples is None:
        examples, origin = load_training_data(settings)
    splits = split_examples(examples)
    train_set, validation, test = splits["train"], splits["validation"], splits["test"]
    log.info("data: %d train, %d validation, %d test from %s", len(train_set), len(validation), len(test), origin)

    tags = {"model_kind": kind, "code_version": code_version(), "policy_version": policy.version}
    with registry.run(settings, name=f"train-{kind}", tags=tags) as run_id:
        started = time.perf_counter()
        classifier, used = fit_model(kind, train_set, validation, policy, params)
        fit_seconds = time.perf_counter() - started
        registry.log_params({
            **used, "model_kind": kind, "data_origin": origin, "data_hash": data_hash(train_set),
            "n_train": len(train_set), "n_validation": len(validation), "n_test": len(test),
            "policy_name": policy.name, "policy_version": policy.version, "policy_digest": policy.digest,
            "python": platform.python_version(),
        })
        registry.log_dict({"sources": dict(Counter(ex.source for ex in examples))}, "data/sources.json")

        prediction = predict_examples(classifier, test)
        metrics = evaluate(classifier, test, policy, prediction)
        metrics["fit_seconds"] = fit_seconds
        classifier.card.metrics = {k: v for k, v in metrics.items() if "/" not in k}
        registry.log_metrics({k.replace("/", "."): v for k, v in metrics.items()}, prefix="test.")
        registry.log_figure(confusion_figure(classifier, test, prediction), "figures/confusion_matrices.png")
        registry.log_dict(classifier.card.__dict__, "model_card.json")

        client = registry.configure(settings)
        model_uri = registry.log_classifier(classifier, [ex.text for ex in test[:3]] or ["example"])
        name = settings.mlflow.model_name
        version = registry.register(client, model_uri, name, tags={"model_kind": kind})
        promoted = False
        if alias:
            registry.set_alias(client, name, alias, version)
        if promote_if_first and registry.alias_version(client, name, registry.CHAMPION) is None:
            registry.set_alias(client, name, registry.CHAMPION, version)
            promoted = True
        log.info("registered %s version %s%s", name, version, " as @champion" if promoted else "")
    return TrainResult(classifier, run_id, version, promoted, metrics, origin)
