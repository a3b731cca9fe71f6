"""The shipped tickets' extra weight in the baseline's training (BaselineParams.shipped_weight)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from training.baseline import BaselineParams, fit
from triage.data.schema import Example
from triage.data.sources import SHIPPED, load_examples
from triage.taxonomy import Policy

PROBE = "the parcel will be collected by the courier on monday morning"


def _train(policy: Policy) -> tuple[list[Example], list[Example]]:
    """The shipped tickets and 12 more texts they call spam, which another source (twice as many rows) says are not."""
    shipped = load_examples(policy)
    base = next(ex for ex in shipped if ex.labels.get("spam") == 1)
    ours = [replace(base, text=f"{PROBE} {i}", labels={**base.labels, "spam": 1}) for i in range(12)]
    theirs = [replace(base, text=f"{PROBE} {i % 12}", labels={"spam": 0}, source="public") for i in range(24)]
    return [*shipped, *ours, *theirs], shipped


def _spam(policy: Policy, weight: float) -> float:
    train, validation = _train(policy)
    params = BaselineParams(min_df=1, n_jobs=1, shipped_weight=weight)
    classifier = fit(train, validation, policy, params)
    j = classifier.card.categories.index("spam")
    return float(classifier.predict([PROBE]).categories[0, j])


def test_shipped_tickets_outweigh_a_larger_contradicting_source(policy: Policy) -> None:
    assert _spam(policy, 1.0) < 0.5 < _spam(policy, 10.0)


def test_on_the_shipped_tickets_alone_the_weight_changes_nothing(policy: Policy) -> None:
    shipped = load_examples(policy)
    scores = [fit(shipped, shipped, policy, BaselineParams(min_df=1, n_jobs=1, shipped_weight=w)).predict([PROBE])
              .categories for w in (1.0, 10.0)]
    assert (scores[0] == scores[1]).all()
    assert all(ex.source == SHIPPED for ex in shipped)


def test_weight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="shipped_weight"):
        BaselineParams(shipped_weight=0.0)
