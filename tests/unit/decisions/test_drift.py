"""Drift on real texts: a week of only spam is flagged; a week drawn like the training data is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triage.data.schema import Example
from triage.data.sources import load_source
from triage.decisions.drift import DriftReference, categorical_psi, compare, psi
from triage.models.base import Classifier
from triage.text import script_of


def test_psi_basics() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(size=5000)
    assert psi(a, b) < 0.02
    assert psi(a, rng.normal(1.0, 1.0, size=5000)) > 0.25
    assert categorical_psi({"x": 50, "y": 50}, {"x": 5, "y": 5}) == pytest.approx(0.0, abs=1e-9)
    assert categorical_psi({"latin": 100}, {"latin": 50, "kana": 50}) > 0.25


@pytest.fixture(scope="module")
def pool(shared_datasets: Path) -> tuple[list[Example], list[Example]]:
    """Everyday texts (tweets, moderation samples, SMS) and the SMS spam among them."""
    sms = load_source("sms_spam", shared_datasets)
    mixed = [*load_source("davidson", shared_datasets), *load_source("openai_moderation", shared_datasets), *sms]
    return mixed, [e for e in sms if e.labels.get("spam") == 1]


def _rows(texts: list[str], classifier: Classifier, tag: str) -> list[dict]:
    scores = classifier.predict(texts).categories
    cats = classifier.card.categories
    return [{"ticket_id": f"{tag}-{i}", "category_scores": dict(zip(cats, map(float, s), strict=True)),
             "text_length": len(t), "script": script_of(t), "route": "review", "text": t}
            for i, (t, s) in enumerate(zip(texts, scores, strict=True))]


def test_spam_week_flagged_normal_week_not(pool: tuple[list[Example], list[Example]],
                                           tiny_classifier: Classifier) -> None:
    mixed, spam = pool
    rng = np.random.default_rng(7)
    order = rng.permutation(len(mixed))
    train = [mixed[i].text for i in order[:3000]]
    normal_week = [mixed[i].text for i in order[3000:3600]]
    spam_week = [spam[i].text for i in rng.permutation(len(spam))[:600]]
    ref = DriftReference.build("triage/1", tiny_classifier.card.categories, train,
                               tiny_classifier.predict(train).categories)

    normal = compare(ref, _rows(normal_week, tiny_classifier, "N"))
    assert not normal.drifted, (normal.features, normal.clusters)
    assert max(f["psi"] for f in normal.features) < 0.1

    shifted = compare(ref, _rows(spam_week, tiny_classifier, "S"))
    assert shifted.drifted
    flagged = {f["feature"] for f in shifted.features if f["flagged"]}
    assert "score:spam" in flagged, shifted.features
    # The spam texts form clusters far from the training sample, each with five example ticket ids.
    assert shifted.clusters and all(len(c["example_ticket_ids"]) == 5 for c in shifted.clusters)
    assert all(t.startswith("S-") for c in shifted.clusters for t in c["example_ticket_ids"])


def test_too_few_decisions_never_flagged(pool: tuple[list[Example], list[Example]],
                                         tiny_classifier: Classifier) -> None:
    mixed, spam = pool
    train = [e.text for e in mixed[:500]]
    ref = DriftReference.build("m", tiny_classifier.card.categories, train, tiny_classifier.predict(train).categories)
    few = compare(ref, [{**r, "text": None} for r in _rows([e.text for e in spam[:20]], tiny_classifier, "S")])
    assert not few.drifted and any("never flagged" in n for n in few.notes)
