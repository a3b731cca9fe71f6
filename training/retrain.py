"""Retraining loop: base data + expert labels -> challenger; champion vs challenger; promotion gate; rollback."""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluate import evaluate, predict_examples
from training.pipeline import ModelKind, code_version, load_training_data, train_on_splits
from triage.adapters import mlflow_registry as registry
from triage.data.merge import merge_expert_labels
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.splits import data_hash, split_examples, split_of
from triage.errors import ModelNotFoundError
from triage.models.base import Classifier, Prediction
from triage.promotion import GateDecision, RuleResult, evaluate_gate, paired_decisions
from triage.settings import Settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationSets:
    """The frozen golden test split of the base data, and the expert labels that hash into the test split."""

    train: list[Example]
    validation: list[Example]
    golden: list[Example]
    expert: list[Example]


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger measured on the same sets, and the gate's verdict."""

    champion_version: str | None
    challenger_version: str
    champion: dict[str, float]
    challenger: dict[str, float]
    gate: GateDecision


@dataclass(frozen=True)
class RetrainResult:
    """What `triage retrain` produced."""

    parent_run_id: str
    challenger_version: str
    comparison: Comparison
    n_expert: int


def build_sets(base: Sequence[Example], expert: Sequence[Example], expert_weight: float) -> EvaluationSets:
    """Train/validation from base+expert (expert overrides); golden test from base only; expert test slice."""
    golden = split_examples(base)["test"]
    expert_test = [ex for ex in expert if split_of(ex.text) == "test"]
    merged = merge_expert_labels(base, [ex for ex in expert if split_of(ex.text) != "test"], expert_weight)
    splits = split_examples(merged)
    return EvaluationSets(splits["train"], splits["validation"], golden, expert_test)


def expert_examples_from_review(settings: Settings) -> list[Example]:
    """Expert labels recorded by the review loop (the label store beside the outbox); empty when none."""
    from triage.review.labels import labelled_examples
    from triage.review.outbox import Outbox

    path = settings.labelstudio.outbox_path or settings.home / "review.db"
    if not Path(path).is_file():
        return []
    outbox = Outbox(path)
    try:
        return labelled_examples(outbox.annotations(), settings.load_policy())
    finally:
        outbox.close()


def measure(classifier: Classifier, sets: EvaluationSets, settings: Settings,
            golden_prediction: Prediction | None = None) -> dict[str, float]:
    """Metrics on the golden set (`golden/...`) and the expert slice (`expert/...`)."""
    policy = settings.load_policy()
    out: dict[str, float] = {}
    for prefix, examples in (("golden", sets.golden), ("expert", sets.expert)):
        if examples:
            metrics = evaluate(classifier, examples, policy, golden_prediction if prefix == "golden" else None)
            out.update({f"{prefix}/{k}": v for k, v in metrics.items() if "/" not in k})
            out[f"{prefix}/n"] = float(len(examples))
    return out


def decisions(classifier: Classifier, prediction: Prediction, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(n, C) category decisions in the policy's order at the model's own thresholds, and (n,) severity levels."""
    card = classifier.card
    out = np.zeros((len(prediction.categories), len(policy.category_names)), dtype=bool)
    for j, name in enumerate(policy.category_names):
        if name in card.categories:
            k = list(card.categories).index(name)
            out[:, j] = prediction.categories[:, k] >= card.thresholds.get(name, policy.category(name).threshold)
    levels = [list(policy.severity_names).index(s) for s in card.severity_levels]
    severity = np.array(levels, dtype=np.int64)[prediction.severity.argmax(axis=1)] if len(out) else \
        np.zeros(0, dtype=np.int64)
    return out, severity


def compare(settings: Settings, champion: Classifier | None, champion_version: str | None,
            challenger: Classifier, challenger_version: str, sets: EvaluationSets) -> Comparison:
    """Evaluate both models on the same sets; the gate judges each rule on the paired golden decisions."""
    policy = settings.load_policy()
    challenger_pred = predict_examples(challenger, sets.golden)
    challenger_metrics = measure(challenger, sets, settings, challenger_pred)
    if champion is None:
        first = RuleResult("golden/champion", True, None, None, 0.0, "no @champion to compare with; not gated",
                           "not measured")
        return Comparison(champion_version, challenger_version, {}, challenger_metrics, GateDecision((first,)))
    champion_pred = predict_examples(champion, sets.golden)
    champion_metrics = measure(champion, sets, settings, champion_pred)
    champion_cat, champion_sev = decisions(champion, champion_pred, policy)
    challenger_cat, challenger_sev = decisions(challenger, challenger_pred, policy)
    paired = paired_decisions(policy.category_names, label_matrix(sets.golden, policy.category_names),
                              champion_cat, challenger_cat, severity_vector(sets.golden, policy.severity_names),
                              champion_sev, challenger_sev, policy.severity_names)
    gate = evaluate_gate(paired, policy.promotion, prefix="golden/")
    return Comparison(champion_version, challenger_version, champion_metrics, challenger_metrics, gate)


def retrain(settings: Settings, kind: ModelKind = "baseline", expert: Sequence[Example] | None = None,
            expert_weight: float = 2.0, params: Any = None, base: Sequence[Example] | None = None) -> RetrainResult:
    """One parent MLflow run: train the challenger (child), evaluate champion and challenger (children), gate."""
    expert = list(expert) if expert is not None else expert_examples_from_review(settings)
    origin = "given examples"
    if base is None:
        base, origin = load_training_data(settings)
    sets = build_sets(base, expert, expert_weight)
    client = registry.configure(settings)
    name = settings.mlflow.model_name
    champion_version = registry.alias_version(client, name, registry.CHAMPION)
    champion = registry.load_model(settings).classifier if champion_version else None

    with registry.run(settings, name=f"retrain-{kind}", tags={"code_version": code_version()}) as parent:
        registry.log_params({
            "model_kind": kind, "expert_examples": len(expert), "expert_weight": expert_weight,
            "expert_test_examples": len(sets.expert), "golden_examples": len(sets.golden),
            "golden_hash": data_hash(sets.golden), "train_hash": data_hash(sets.train),
            "champion_version": champion_version or "none", "data_origin": origin,
        })
        trained = train_on_splits(settings, kind, sets.train, sets.validation, sets.golden, params=params,
                                  origin=f"{origin} + {len(expert)} expert labels", promote_if_first=False,
                                  alias=registry.CHALLENGER, nested=True,
                                  extra_params={"expert_weight": expert_weight, "expert_examples": len(expert)})
        assert trained.version is not None
        comparison = compare(settings, champion, champion_version, trained.classifier, trained.version, sets)
        for role, metrics, version in (("champion", comparison.champion, champion_version),
                                       ("challenger", comparison.challenger, trained.version)):
            if metrics:
                with registry.run(settings, name=f"evaluate-{role}", nested=True,
                                  tags={"role": role, "model_version": str(version)}):
                    registry.log_metrics({k.replace("/", "."): v for k, v in metrics.items()})
        registry.log_metrics({f"gate_{k.replace('/', '.')}": v for k, v in comparison.challenger.items()
                              if k.startswith("golden/")})
        registry.log_dict(comparison.gate.as_dict(), "gate.json")
        registry.log_dict({"champion": comparison.champion, "challenger": comparison.challenger},
                          "comparison.json")
        client.set_model_version_tag(name, trained.version, "gate_passed", str(comparison.gate.passed).lower())
        client.set_model_version_tag(name, trained.version, "retrain_run_id", parent)
    return RetrainResult(parent, trained.version, comparison, len(expert))


@dataclass(frozen=True)
class PromotionOutcome:
    """What `triage promote` did."""

    promoted: bool
    version: str
    previous: str | None
    comparison: Comparison | None
    forced: bool


def promote(settings: Settings, version: str | None = None, force: bool = False, reason: str = "",
            by: str | None = None, expert: Sequence[Example] | None = None,
            base: Sequence[Example] | None = None) -> PromotionOutcome:
    """Move @champion to the challenger (or `version`) when the gate passes; `force` records who and why."""
    client = registry.configure(settings)
    name = settings.mlflow.model_name
    version = version or registry.alias_version(client, name, registry.CHALLENGER)
    if version is None:
        raise ModelNotFoundError(f"no {name}@{registry.CHALLENGER} to promote; run `triage retrain` first")
    if force and not reason.strip():
        raise ValueError("a forced promotion needs --reason")
    champion_version = registry.alias_version(client, name, registry.CHAMPION)
    comparison = None
    if champion_version is not None and champion_version != version:
        expert = list(expert) if expert is not None else expert_examples_from_review(settings)
        if base is None:
            base, _ = load_training_data(settings)
        sets = build_sets(base, expert, 1.0)
        comparison = compare(settings, registry.load_model(settings).classifier, champion_version,
                             registry.load_version(settings, version).classifier, version, sets)
        if not comparison.gate.passed and not force:
            return PromotionOutcome(False, version, champion_version, comparison, False)
    record = {
        "promoted_at": datetime.now(UTC).isoformat(),
        "promoted_by": by or getpass.getuser(),
        "promotion_forced": str(force and comparison is not None and not comparison.gate.passed).lower(),
        "promotion_reason": reason or "gate passed",
    }
    if comparison is not None:
        record["promotion_gate"] = json.dumps(comparison.gate.as_dict())[:4900]
    previous = registry.move_champion(client, name, version, record)
    return PromotionOutcome(True, version, previous, comparison, record["promotion_forced"] == "true")


def rollback(settings: Settings, reason: str = "", by: str | None = None) -> tuple[str | None, str]:
    """Restore the previous champion; returns (from, to)."""
    client = registry.configure(settings)
    return registry.roll_back(client, settings.mlflow.model_name, {
        "rolled_back_at": datetime.now(UTC).isoformat(),
        "rolled_back_by": by or getpass.getuser(),
        "rollback_reason": reason or "rollback",
    })
