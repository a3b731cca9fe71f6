"""Identity-term bias on the evaluation-only templates: per-term false positives and counterfactual flips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from training.identity_bias import identity_bias, markdown
from triage.data.sources import load_source
from triage.models.base import Classifier, ModelCard, Prediction
from triage.taxonomy import Policy


class WordFlagger:
    """Flags hate on every text that contains one word: a model with a known, extreme identity-term bias."""

    def __init__(self, word: str, policy: Policy) -> None:
        self.word = word
        self.card = ModelCard("word", list(policy.category_names), list(policy.severity_names), policy.name,
                              policy.version, policy.digest, thresholds={"hate": 0.5})

    def predict(self, texts: Sequence[str]) -> Prediction:
        cats = np.zeros((len(texts), len(self.card.categories)))
        cats[:, self.card.categories.index("hate")] = [float(self.word in t.lower().split()) for t in texts]
        return Prediction(cats, np.full((len(texts), len(self.card.severity_levels)), 0.2))

    def save(self, directory: Path) -> None:
        raise NotImplementedError


@pytest.fixture(scope="module")
def sample(shared_datasets: Path) -> list:
    examples = load_source("jigsaw_identity_templates", shared_datasets)
    templates = [e for e in examples if e.meta["set"] == "templates"]
    # the file cycles through the 50 terms, so a stride would pick a few: a seeded random sample instead
    picked = np.random.default_rng(0).choice(len(templates), 4000, replace=False)
    return [templates[i] for i in sorted(picked)] + [e for e in examples if e.meta["set"] != "templates"]


def test_a_model_that_flags_one_identity_term_shows_it_as_the_worst_term(sample: list, policy: Policy) -> None:
    report = identity_bias(WordFlagger("muslim", policy), sample, policy)
    rows = {r["term"]: r for r in report["terms"]}
    assert len(rows) == 50
    assert report["terms"][0]["term"] == "muslim" and rows["muslim"]["false_positive_share"] == 1.0
    assert rows["gay"]["false_positive_share"] == 0.0
    assert report["false_positive_share_max"] == 1.0 and report["false_positive_share_min"] == 0.0
    cf = report["counterfactual"]
    assert cf["pairs"] > 100 and 0.0 < cf["decision_flips"] < 0.5  # swapping terms moves 'muslim' in or out
    assert "| muslim |" in markdown(report, "word flagger")


def test_the_tiny_baseline_gets_a_report_with_every_term(sample: list, tiny_classifier: Classifier,
                                                         policy: Policy) -> None:
    report = identity_bias(tiny_classifier, sample, policy)
    assert len(report["terms"]) == 50
    assert all(0.0 <= r["false_positive_share"] <= 1.0 and r["nontoxic"] > 0 for r in report["terms"])
    assert report["counterfactual"]["pairs"] > 100


def test_other_sources_are_refused(policy: Policy, tiny_classifier: Classifier) -> None:
    from triage.data.sources import load_examples

    with pytest.raises(ValueError, match="no jigsaw_identity_templates examples"):
        identity_bias(tiny_classifier, load_examples(), policy)
