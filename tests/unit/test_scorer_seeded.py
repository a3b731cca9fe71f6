"""A model card with auto-clear points (the lead's guarantees) and a category running on seed examples (policy):
the seeded category's positives are reviewed with the reason that says what scores it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.seeded import NEW, write_seeded_policy
from triage.models.base import ModelCard, Prediction
from triage.scorer import Scorer
from triage.taxonomy import Policy, load_policy
from triage.tickets import Ticket


class FixedClassifier:
    """Gives the seeded category `p_new` and every other category 0.01, severity `none`."""

    def __init__(self, policy: Policy, p_new: float) -> None:
        names = list(policy.category_names)
        clear = {n: {"category": n, "max_miss": 0.05, "threshold": 0.3, "certified": True, "miss_upper_bound": 0.04,
                     "validation_miss": 0.02, "cleared_share": 0.8, "positives": 100, "known": 1000}
                 for n in names if n != NEW}
        self.card = ModelCard(kind="table", categories=names, severity_levels=list(policy.severity_names),
                              policy_name=policy.name, policy_version=policy.version, policy_digest=policy.digest,
                              thresholds={n: 0.5 for n in names},
                              extra={"clear_points": clear,
                                     "example_heads": {NEW: {"runs_on": "examples", "always_review": True}}})
        self.p_new = p_new

    def predict(self, texts: Sequence[str]) -> Prediction:
        cats = np.full((len(texts), len(self.card.categories)), 0.01)
        cats[:, self.card.categories.index(NEW)] = self.p_new
        sev = np.zeros((len(texts), len(self.card.severity_levels)))
        sev[:, 0] = 1.0
        return Prediction(cats, sev)

    def save(self, directory: Path) -> None:  # pragma: no cover - never saved
        raise NotImplementedError


def test_seeded_positive_is_reviewed_with_its_reason_under_auto_clear_points(tmp_path: Path) -> None:
    policy = load_policy(write_seeded_policy(tmp_path))
    (item,) = Scorer(FixedClassifier(policy, 0.8), policy).score([Ticket("t", "replica bags")])
    assert item.decision.route == "review"
    assert any(f"{NEW} runs on seed examples only" in r for r in item.decision.reasons)


def test_seeded_negative_is_cleared_as_before(tmp_path: Path) -> None:
    policy = load_policy(write_seeded_policy(tmp_path))
    (item,) = Scorer(FixedClassifier(policy, 0.01), policy).score([Ticket("t", "thanks for the help")])
    assert not any("runs on seed examples" in r for r in item.decision.reasons)
