"""Agreement figures on hand-computed cases."""

from __future__ import annotations

import pytest

from triage.review.agreement import agreement, krippendorff_alpha_nominal, pairwise_agreement


def test_perfect_agreement_is_one() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["a", "a"]]) == pytest.approx(1.0)


def test_known_value() -> None:
    # Krippendorff (2011) style example: 2 coders, nominal. Coincidences: a-a 2, b-b 2, a-b 1, b-a 1 (n=6)
    units = [["a", "a"], ["b", "b"], ["a", "b"]]
    # D_o = 2 ; D_e = n_a * n_b * 2 = 3*3*2 = 18 ; alpha = 1 - (n-1) * D_o / D_e = 1 - 5*2/18
    assert krippendorff_alpha_nominal(units) == pytest.approx(1 - 10 / 18)


def test_systematic_disagreement_is_negative() -> None:
    alpha = krippendorff_alpha_nominal([["a", "b"], ["b", "a"]])
    assert alpha is not None and alpha < 0


def test_undefined_cases() -> None:
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None  # no pairs
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None  # no variation
    assert pairwise_agreement([["a"]]) is None


def test_pairwise_counts_every_pair() -> None:
    assert pairwise_agreement([["a", "a", "b"]]) == pytest.approx(1 / 3)


def test_only_shared_tasks_count() -> None:
    ag = agreement({1: [(frozenset({"spam"}), "low")], 2: [(frozenset({"spam"}), "low"), (frozenset(), "low")]},
                   ["spam", "fraud"])
    assert ag.tasks == 1 and ag.annotations == 2
    assert ag.category_pairwise == {"spam": 0.0, "fraud": 1.0}
    assert ag.severity_pairwise == 1.0 and ag.exact_match == 0.0
