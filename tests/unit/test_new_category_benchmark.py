"""The new-category benchmark's comparison: labels needed for a target F1, interpolated, over seeds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from benchmarks.new_category import Task, compare, labels_to_reach, output_stem, rarefy


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


def _task(y_pool: np.ndarray) -> Task:
    """A task whose pool row i has the embedding [i, label]: rows stay traceable after subsampling."""
    x_pool = np.column_stack([np.arange(len(y_pool)), y_pool]).astype(np.float64)
    return Task("spam", x_pool, y_pool, np.eye(3), np.array([1, 0, 0]))


@given(st.lists(st.integers(0, 1), min_size=20, max_size=300), st.floats(0.01, 0.3), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_rarefy_keeps_every_negative_and_test_row_and_just_enough_positives(labels: list[int], prevalence: float,
                                                                          seed: int) -> None:
    task = _task(np.array(labels, dtype=np.int64))
    negatives = int((task.y_pool == 0).sum())
    wanted = round(prevalence * negatives / (1 - prevalence))
    assume(wanted <= int(task.y_pool.sum()))
    rare = rarefy(task, prevalence, np.random.default_rng(seed))
    kept = rare.x_pool[:, 0].astype(int)
    assert len(set(kept)) == len(kept)  # no row twice
    np.testing.assert_array_equal(rare.y_pool, task.y_pool[kept])  # embeddings and labels stay paired
    assert int((rare.y_pool == 0).sum()) == negatives
    assert int(rare.y_pool.sum()) == wanted
    if negatives:
        assert abs(rare.y_pool.mean() - prevalence) <= 1 / len(rare.y_pool)
    assert rare.x_test is task.x_test and rare.y_test is task.y_test


def test_rarefy_says_when_the_pool_has_too_few_positives_for_the_prevalence() -> None:
    task = _task(np.array([1] * 5 + [0] * 95))
    with pytest.raises(ValueError, match=r"spam: a pool prevalence of 0.2 needs 24 positives .* the pool has 5"):
        rarefy(task, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="prevalence must be in"):
        rarefy(task, 0.0, np.random.default_rng(0))


def test_each_setting_writes_its_own_result_files() -> None:
    assert output_stem(None, 0) == "new_category"  # the natural run's files stay where they were
    assert output_stem(0.02, 0) == "new_category_p0.02"
    assert output_stem(0.05, 4) == "new_category_p0.05_diverse4"
    assert output_stem(None, 4) == "new_category_diverse4"
