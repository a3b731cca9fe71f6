"""Invariants of temperature scaling and threshold selection (Hypothesis property tests plus fixed cases)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from triage.calibration import (
    SigmoidCalibration,
    apply_sigmoid_calibration,
    best_f1_threshold,
    choose_threshold,
    fit_ordinal_temperature,
    fit_sigmoid_temperature,
    fit_softmax_temperature,
    ordinal_probabilities,
    reliability_bins,
    softmax_probabilities,
    threshold_for_precision,
)

finite = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_infinity=False)
temperatures = st.floats(min_value=0.05, max_value=20.0)
biases = st.floats(min_value=-10.0, max_value=10.0)
logit_vectors = arrays(np.float64, st.integers(1, 60), elements=finite)


@st.composite
def labelled_scores(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels with probabilities, some of them tied."""
    n = draw(st.integers(2, 80))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.float64)
    grid = draw(st.sampled_from([None, 5, 20]))
    p = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    if grid is not None:
        p = np.round(p * grid) / grid
    return y, p


@given(logit_vectors, temperatures, biases)
def test_sigmoid_calibration_gives_probabilities(z: np.ndarray, t: float, b: float) -> None:
    p = SigmoidCalibration(t, b).apply(z)
    assert np.all((p >= 0) & (p <= 1))


@given(logit_vectors, temperatures, biases)
def test_sigmoid_temperature_keeps_the_ranking(z: np.ndarray, t: float, b: float) -> None:
    p = SigmoidCalibration(t, b).apply(z)
    # Monotone: a larger logit never gets a smaller probability (ties may appear only by saturation).
    order = np.argsort(z, kind="stable")
    assert np.all(np.diff(p[order]) >= 0)


@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)), elements=finite), temperatures)
def test_softmax_temperature_keeps_probabilities_and_argmax(z: np.ndarray, t: float) -> None:
    p = softmax_probabilities(z, t)
    assert np.all((p >= 0) & (p <= 1))
    assert np.allclose(p.sum(axis=1), 1.0)
    # Ranking within each row is preserved: the order of logits equals the order of probabilities.
    for row_z, row_p in zip(z, p, strict=True):
        order = np.argsort(row_z, kind="stable")
        assert np.all(np.diff(row_p[order]) >= -1e-12)


@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 5)), elements=finite), temperatures)
def test_ordinal_probabilities_are_a_distribution(z: np.ndarray, t: float) -> None:
    z = np.sort(z, axis=1)[:, ::-1]  # P(y > k) falls with k, as the model's ordered cut-points make it
    p = ordinal_probabilities(z, t)
    assert p.shape == (z.shape[0], z.shape[1] + 1)
    assert np.all((p >= 0) & (p <= 1))
    assert np.allclose(p.sum(axis=1), 1.0)


@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 5)), elements=finite), temperatures)
def test_ordinal_temperature_keeps_the_ranking_of_expected_severity(z: np.ndarray, t: float) -> None:
    z = np.sort(z, axis=1)[:, ::-1]
    # Every cumulative probability is a monotone function of its logit, so "P(y > k)" ranks rows the same.
    s1 = 1 - np.cumsum(ordinal_probabilities(z, 1.0), axis=1)[:, :-1]
    st_ = 1 - np.cumsum(ordinal_probabilities(z, t), axis=1)[:, :-1]
    for k in range(z.shape[1]):
        order = np.argsort(z[:, k], kind="stable")
        assert np.all(np.diff(s1[order, k]) >= -1e-9)
        assert np.all(np.diff(st_[order, k]) >= -1e-9)


@settings(max_examples=200)
@given(labelled_scores(), st.floats(0.05, 1.0), st.floats(0.05, 1.0), st.integers(1, 5))
def test_threshold_is_monotone_in_target_precision(
    data: tuple[np.ndarray, np.ndarray], a: float, b: float, min_tp: int
) -> None:
    y, p = data
    low, high = sorted((a, b))
    t_low = threshold_for_precision(y, p, low, min_tp)
    t_high = threshold_for_precision(y, p, high, min_tp)
    if t_low is None:
        # Unreachable stays unreachable when the target rises.
        assert t_high is None
    elif t_high is not None:
        assert t_high >= t_low
        c_low, c_high = choose_threshold(y, p, low, min_tp), choose_threshold(y, p, high, min_tp)
        assert c_low.method == c_high.method == "target_precision"
        assert c_high.threshold >= c_low.threshold


@given(labelled_scores(), st.floats(0.05, 1.0))
def test_chosen_threshold_meets_the_target_or_says_it_did_not(
    data: tuple[np.ndarray, np.ndarray], target: float
) -> None:
    y, p = data
    choice = choose_threshold(y, p, target, min_true_positives=1)
    if choice.method == "target_precision":
        assert choice.precision >= target - 1e-12
        # No lower score would have met the target: the choice keeps the most recall.
        lower = np.unique(p[p < choice.threshold])
        for t in lower:
            pred = p >= t
            assert pred.sum() == 0 or (y[pred].sum() / pred.sum() < target or y[pred].sum() < 1)
    elif y.sum() > 0:
        assert choice.method == "best_f1"
    else:
        assert choice.method == "default"


@given(labelled_scores(), st.floats(0.05, 1.0), temperatures, biases)
def test_calibration_does_not_change_the_rows_flagged_at_a_target(
    data: tuple[np.ndarray, np.ndarray], target: float, t: float, b: float
) -> None:
    y, p = data
    p = np.clip(np.round(p * 20) / 20, 0.05, 0.95)  # well-separated scores: no float ties after scaling
    z = np.log(p / (1 - p))
    raw = SigmoidCalibration().apply(z)
    cal = SigmoidCalibration(t, b).apply(z)
    # Only while calibration keeps the scores apart in floating point (a steep one saturates distinct scores to 1.0).
    assume(len(np.unique(cal)) == len(np.unique(raw)))
    before, after = choose_threshold(y, raw, target, 1), choose_threshold(y, cal, target, 1)
    assert before.method == after.method
    if before.method != "default":
        assert np.array_equal(raw >= before.threshold, cal >= after.threshold)
        assert before.precision == pytest.approx(after.precision)


def test_fitted_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 1.5, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    shown = 3.0 * true_logit + 1.0  # overconfident and shifted, as positive weighting makes them
    cal = fit_sigmoid_temperature(shown, y)
    assert cal.temperature == pytest.approx(3.0, rel=0.1)
    assert cal.bias == pytest.approx(-1.0 / 3.0, abs=0.1)


def test_unknown_labels_are_ignored_by_the_fit() -> None:
    z = np.array([-2.0, -1.0, 1.0, 2.0, 5.0, -5.0])
    y = np.array([0.0, 0.0, 1.0, 1.0, np.nan, np.nan])
    assert fit_sigmoid_temperature(z, y) == fit_sigmoid_temperature(z[:4], y[:4])


def test_softmax_and_ordinal_temperatures_recover_a_known_scale() -> None:
    rng = np.random.default_rng(1)
    true = rng.normal(0, 1, (5_000, 4))
    y = np.array([rng.choice(4, p=np.exp(r) / np.exp(r).sum()) for r in true])
    assert fit_softmax_temperature(true * 2.0, y) == pytest.approx(2.0, rel=0.1)
    score = rng.normal(0, 1.5, 5_000)
    cuts = np.array([-1.0, 0.5, 2.0])
    cum = score[:, None] - cuts[None, :]
    p = ordinal_probabilities(cum)
    ys = np.array([rng.choice(4, p=row) for row in p])
    assert fit_ordinal_temperature(cum * 0.5, ys) == pytest.approx(0.5, rel=0.15)


def test_apply_checks_the_number_of_columns() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        apply_sigmoid_calibration(np.zeros((3, 3)), [SigmoidCalibration(), SigmoidCalibration()])


def test_invalid_temperature_is_rejected() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SigmoidCalibration(temperature=0.0)


def test_threshold_selection_on_a_known_case() -> None:
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # p >= 0.7: 3/3 precise; p >= 0.5: 4/5 = 0.8; p >= 0.2: 4/8.
    assert threshold_for_precision(y, p, 1.0, min_true_positives=1) == 0.7
    assert threshold_for_precision(y, p, 0.8, min_true_positives=1) == 0.5
    assert threshold_for_precision(y, p, 0.8, min_true_positives=5) is None
    choice = choose_threshold(y, p, 0.99, min_true_positives=4)
    assert choice.method == "best_f1"
    assert choice.threshold == best_f1_threshold(y, p) == 0.5


def test_reliability_bins_count_known_cells_only() -> None:
    y = np.array([[1.0, np.nan], [0.0, 1.0]])
    p = np.array([[0.95, 0.5], [0.05, 0.9]])
    bins = reliability_bins(y, p, bins=10)
    assert sum(c for c in bins["count"] if c) == 3
    assert bins["frequency"][0] == 0.0 and bins["frequency"][9] == 1.0
