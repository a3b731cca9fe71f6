"""`triage retrain --heads-only`: light heads for new categories on frozen features, registered as @challenger.

The champion's classifier is kept as it is (its trained heads, weights and test metrics); each seeded policy
category it has no head for gets a logistic regression on the frozen encoder's embeddings once experts have
labelled `policy.new_categories.min_labels_for_head` tickets (seed examples count as positives, counter-examples
as negatives). Minutes, not a full retrain: the slow part is embedding the labelled texts.

Gate for a heads-only challenger: its base is the champion's classifier unchanged, so every trained category
scores exactly as before; each new head must have enough labels and positives. A light head's positives keep
going to review until its cross-validated precision meets the category's target precision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from training.pipeline import code_version
from training.retrain import expert_examples_from_review
from triage.adapters import mlflow_registry as registry
from triage.data.schema import Example
from triage.errors import TriageError
from triage.models.examples import HeadsClassifier, LightHead, TextEncoder, background_texts, fit_light_head
from triage.settings import Settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)


class NotEnoughLabelsError(TriageError):
    """No new category has the labels a light head needs; the message says how many each one has."""


@dataclass(frozen=True)
class HeadsResult:
    """What `triage retrain --heads-only` did."""

    version: str
    run_id: str
    heads: list[LightHead]
    skipped: dict[str, str] = field(default_factory=dict)
    promoted: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def head_training_set(policy: Policy, name: str, expert: Sequence[Example]) -> tuple[list[str], np.ndarray, int]:
    """Texts and 0/1 labels for one category's head: seeds, counter-examples, then expert labels (which win).

    Returns (texts, labels, number of expert labels).
    """
    category = policy.category(name)
    labelled = {ex.text: int(ex.labels[name]) for ex in expert if name in ex.labels}
    rows = {t: 1 for t in category.examples} | {t: 0 for t in category.counter_examples} | labelled
    return list(rows), np.array(list(rows.values()), dtype=np.int64), len(labelled)


def fit_heads(policy: Policy, candidates: Sequence[str], expert: Sequence[Example],
              encoder: TextEncoder, background: Sequence[str] | None = None) -> tuple[list[LightHead], dict[str, str]]:
    """A light head for each candidate with enough labels; the others with the reason they were skipped.

    `background` (default: the shipped tickets that calibrate examples heads) joins each head as weak negatives,
    except the texts that are seeds or labelled for it.
    """
    rules = policy.new_categories
    ready: dict[str, tuple[list[str], np.ndarray]] = {}
    skipped: dict[str, str] = {}
    for name in candidates:
        texts, y, n_expert = head_training_set(policy, name, expert)
        if n_expert < rules.min_labels_for_head:
            skipped[name] = f"{n_expert} of {rules.min_labels_for_head} expert labels"
        elif int(y.sum()) < rules.min_positives_for_head or y.min() == 1:
            skipped[name] = (f"{int(y.sum())} positives (seeds included) and {int((y == 0).sum())} negatives; "
                             f"needs {rules.min_positives_for_head} positives and a negative")
        else:
            ready[name] = (texts, y)
    # Every labelled ticket answers for every category: embed each text once, not once per head.
    bg_texts = list(background if background is not None else (background_texts() if ready else []))
    unique = list(dict.fromkeys([*(t for texts, _ in ready.values() for t in texts), *bg_texts]))
    vectors = dict(zip(unique, encoder.encode(unique), strict=True)) if unique else {}
    heads: list[LightHead] = []
    for name, (texts, y) in ready.items():
        own = set(texts)
        bg = [vectors[t] for t in dict.fromkeys(bg_texts) if t not in own]
        heads.append(fit_light_head(name, np.stack([vectors[t] for t in texts]), y,
                                    target_precision=policy.category(name).target_precision,
                                    background=np.stack(bg) if bg else None))
        log.info("light head for %s: %d labels, %d positives, CV precision %s", name, len(y), int(y.sum()),
                 heads[-1].precision)
    return heads, skipped


def retrain_heads(settings: Settings, expert: Sequence[Example] | None = None, promote: bool = False,
                  encoder: TextEncoder | None = None) -> HeadsResult:
    """Fit light heads on the champion, log and register the result as @challenger (and @champion if `promote`)."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    policy = settings.load_policy()
    expert = list(expert) if expert is not None else expert_examples_from_review(settings)
    champion = registry.load_model(settings)
    current = champion.classifier
    base = current.base if isinstance(current, HeadsClassifier) else current
    kept = [h for h in current.heads if isinstance(h, LightHead)] if isinstance(current, HeadsClassifier) else []
    candidates = [n for n in policy.seeded_categories if n not in base.card.categories]
    seconds["load_champion"] = time.perf_counter() - started
    if encoder is None:
        from triage.encoder import get_encoder

        encoder = get_encoder()
    heads, skipped = fit_heads(policy, candidates, expert, encoder)
    seconds["fit_heads"] = time.perf_counter() - started - sum(seconds.values())
    if not heads:
        detail = "; ".join(f"{n}: {why}" for n, why in skipped.items()) or "the policy has no seeded category " \
                                                                          "without a trained head"
        raise NotEnoughLabelsError(f"no light head to fit ({detail})")
    fitted = {h.name for h in heads}
    model = HeadsClassifier(base, [*(h for h in kept if h.name not in fitted), *heads], encoder)
    client = registry.configure(settings)
    name = settings.mlflow.model_name
    with registry.run(settings, name="retrain-heads", tags={"code_version": code_version(),
                                                           "model_kind": "heads"}) as run_id:
        registry.log_params({"base_version": champion.version, "base_kind": base.card.kind,
                             "expert_examples": len(expert), "policy_version": policy.version,
                             "min_labels_for_head": policy.new_categories.min_labels_for_head,
                             **{f"head.{h.name}.labels": h.n_labels for h in heads},
                             **{f"head.{h.name}.positives": h.n_positives for h in heads}})
        # The trained categories are the champion's, unchanged: carry its test metrics over.
        registry.log_metrics({k: v for k, v in champion.metrics.items() if k.startswith("test.")})
        registry.log_metrics({f"head.{h.name}.cv_precision": h.precision for h in heads if h.precision is not None})
        registry.log_dict({h.name: h.describe() for h in model.heads if isinstance(h, LightHead)}, "heads.json")
        uri = registry.log_classifier(model, [ex.text for ex in expert[:3]] or list(policy.categories[0].examples[:1])
                                      or ["example"])
        version = registry.register(client, uri, name, tags={"model_kind": "heads", "run_id": run_id,
                                                              "base_version": champion.version})
        registry.set_alias(client, name, registry.CHALLENGER, version)
        client.set_model_version_tag(name, version, "gate_passed", "true")
    seconds["register"] = time.perf_counter() - started - sum(seconds.values())
    promoted = False
    if promote:
        registry.move_champion(client, name, version, {
            "promoted_at": datetime.now(UTC).isoformat(), "promoted_by": "triage retrain --heads-only --promote",
            "promotion_forced": "false",
            "promotion_reason": f"heads-only gate: base v{champion.version} unchanged; new heads "
                                + ", ".join(f"{h.name} ({h.n_labels} labels)" for h in heads),
        })
        promoted = True
    seconds["total"] = time.perf_counter() - started
    return HeadsResult(version, run_id, heads, skipped, promoted, seconds)
