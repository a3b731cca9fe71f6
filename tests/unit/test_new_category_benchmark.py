"""The new-category benchmark's comparison: labels needed for a target F1, interpolated, over seeds."""

from __future__ import annotations

import pytest

from benchmarks.new_category import compare, labels_to_reach


def test_labels_to_reach_interpolates_between_rounds_and_says_never() -> None:
    curve = {0: 0.2, 25: 0.4, 50: 0.8}
    assert labels_to_reach(curve, 0.2) == 0.0
    assert labels_to_reach(curve, 0.6) == pytest.approx(37.5)
    assert labels_to_reach(curve, 0.9) is None


def test_compare_reports_the_guided_over_random_ratio_and_censored_seeds() -> None:
    guided = [{0: 0.3, 25: 0.9, 50: 0.9}, {0: 0.3, 25: 0.5, 50: 0.9}]
    random = [{0: 0.3, 25: 0.5, 50: 0.9}, {0: 0.3, 25: 0.5, 50: 0.6}]
    out = compare({"guided": guided, "random": random}, full_f1=1.0, budget=50, upto=50)
    to90 = out["labels_to_90pct"]
    assert isinstance(to90, dict)
    assert to90["guided"]["per_seed"] == [25.0, 50.0]
    assert to90["random"]["per_seed"] == [50.0, None]
    assert to90["random"]["censored"] == 1  # counted as the budget: a lower bound
    assert to90["guided_over_random"] == pytest.approx(37.5 / 50.0)
    matched = out["random_labels_for_guided_f1"]
    assert isinstance(matched, dict)
    # guided's mean F1 at 25 labels (0.7): the random mean curve (0.3, 0.5, 0.75) gets there at 25 + 25 * 0.2 / 0.25
    assert matched[25]["random_labels"] == pytest.approx(45.0)
    assert matched[25]["guided_over_random"] == pytest.approx(25.0 / 45.0)
    assert set(matched) == {25, 50}  # only the rounds the curves have
