"""Precision-guaranteed operating points, prediction sets, and the routing invariants they rely on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.conformal import (
    OperatingPoint,
    best_precision_bound,
    clopper_pearson_lower,
    expected_precision,
    fit_operating_point,
    fit_operating_points,
    guarded_decision,
    points_from_card,
    precision_threshold,
    prediction_set,
)
from triage.routing import decide
from triage.taxonomy import load_policy
from triage.tickets import Scores

POLICY = load_policy()
SEVERITY_NONE = {"none": 0.9, "low": 0.1, "medium": 0.0, "high": 0.0, "critical": 0.0}

# 20 positives scored 0.99 .. 0.80, then 20 negatives scored 0.50 .. 0.31.
SCORES = np.r_[np.linspace(0.99, 0.80, 20), np.linspace(0.50, 0.31, 20)]
LABELS = np.r_[np.ones(20), np.zeros(20)]


def test_clopper_pearson_matches_the_closed_form() -> None:
    # With every trial a success the one-sided bound is delta ** (1 / n).
    assert clopper_pearson_lower(20, 20, 0.1) == pytest.approx(0.1 ** (1 / 20))
    assert clopper_pearson_lower(0, 7, 0.1) == 0.0
    assert clopper_pearson_lower(np.array([5, 10]), np.array([10, 10]), 0.05)[1] == pytest.approx(0.05 ** 0.1)
    with pytest.raises(ValueError, match="delta"):
        clopper_pearson_lower(1, 2, 0.0)


def test_threshold_is_the_lowest_score_whose_lower_bound_meets_the_target() -> None:
    # 20/20 correct: bound 0.891. Adding the first negative (20/21) drops the bound to about 0.83.
    assert precision_threshold(LABELS, SCORES, 0.85, delta=0.1) == pytest.approx(0.80)
    assert precision_threshold(LABELS, SCORES, 0.89, delta=0.1) == pytest.approx(0.80)
    assert precision_threshold(LABELS, SCORES, 0.90, delta=0.1) is None
    # A looser target lets the first negatives in: 20/22 has a bound above 0.75.
    assert clopper_pearson_lower(20, 22, 0.1) >= 0.75
    looser = precision_threshold(LABELS, SCORES, 0.75, delta=0.1)
    assert looser is not None and looser < 0.80


def test_unknown_labels_are_ignored_not_negative() -> None:
    labels = np.r_[LABELS, [np.nan, np.nan, np.nan]]
    scores = np.r_[SCORES, [0.995, 0.85, 0.2]]
    assert precision_threshold(labels, scores, 0.85) == precision_threshold(LABELS, SCORES, 0.85)
    assert precision_threshold(np.full(5, np.nan), np.linspace(0, 1, 5), 0.5) is None
    assert precision_threshold(np.zeros(5), np.linspace(0, 1, 5), 0.5) is None


def test_operating_point_carries_expected_precision_and_bound() -> None:
    point = fit_operating_point("spam", LABELS, SCORES, 0.85, delta=0.1)
    assert point.threshold == pytest.approx(0.80)
    assert point.expected_precision == 1.0
    assert point.precision_lower_bound == pytest.approx(0.1 ** (1 / 20), abs=1e-6)
    assert (point.selected, point.positives, point.known, point.recall) == (20, 20, 40, 1.0)
    assert point.admits(0.8) and not point.admits(0.79)
    assert expected_precision(LABELS, SCORES, 0.455) == pytest.approx(20 / 25)
    assert expected_precision(LABELS, SCORES, None) is None
    none = fit_operating_point("spam", LABELS, SCORES, 0.99)
    assert not none.certified and not none.admits(1.0)
    # Uncertified, it still says what validation could promise: the 20/20 bound.
    assert none.best_lower_bound == pytest.approx(0.1 ** (1 / 20), abs=1e-6)
    assert best_precision_bound(np.full(3, np.nan), np.ones(3)) is None
    assert OperatingPoint.from_dict(point.to_dict()) == point
    assert points_from_card({"operating_points": {"spam": point.to_dict()}}) == {"spam": point}


def test_fit_operating_points_reads_targets_from_the_policy() -> None:
    y = np.column_stack([LABELS, np.r_[np.full(20, np.nan), np.zeros(20)]])
    p = np.column_stack([SCORES, SCORES])
    points = fit_operating_points(y, p, ["hate", "spam"], POLICY)
    assert points["hate"].target_precision == POLICY.category("hate").target_precision
    assert points["hate"].certified
    assert not points["spam"].certified and points["spam"].positives == 0
    with pytest.raises(ValueError, match="must both be"):
        fit_operating_points(y, p[:, :1], ["hate", "spam"], POLICY)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=80),
    st.floats(0.05, 1.0),
    st.floats(0.05, 1.0),
    st.sampled_from([0.05, 0.1, 0.2]),
)
def test_threshold_is_monotone_in_the_target(rows: list[tuple[float, bool]], a: float, b: float,
                                             delta: float) -> None:
    lo, hi = sorted((a, b))
    p = np.array([r[0] for r in rows])
    y = np.array([float(r[1]) for r in rows])
    t_lo = precision_threshold(y, p, lo, delta)
    t_hi = precision_threshold(y, p, hi, delta)
    as_num = [math.inf if t is None else t for t in (t_lo, t_hi)]
    assert as_num[0] <= as_num[1]


# ---------------------------------------------------------------------------------------------- routing


def _scores(cats: dict[str, float], severity: dict[str, float] | None = None) -> Scores:
    full = {name: 0.01 for name in POLICY.category_names}
    full.update(cats)
    return Scores(categories=full, severity=severity or SEVERITY_NONE)


def _point(name: str, threshold: float | None) -> OperatingPoint:
    return OperatingPoint(name, POLICY.category(name).target_precision, threshold, 0.96, 0.95, 0.5, 100, 60, 500)


def test_prediction_set_holds_the_certified_categories_best_first() -> None:
    points = {"spam": _point("spam", 0.9), "fraud": _point("fraud", 0.8), "hate": _point("hate", None)}
    scores = {"spam": 0.95, "fraud": 0.97, "hate": 0.99, "sexual": 0.99}
    assert prediction_set(scores, points) == ("fraud", "spam")
    # With decision thresholds, a category the model says no to is never asserted.
    assert prediction_set(scores, points, {"fraud": 0.98}) == ("spam",)


def test_guarded_decision_reviews_a_positive_below_its_operating_point() -> None:
    points = {"spam": _point("spam", 0.95)}
    confident = guarded_decision(_scores({"spam": 0.97}), POLICY, points)
    assert confident.route == "auto" and confident.category == "spam"
    below = guarded_decision(_scores({"spam": 0.90}), POLICY, points)
    assert decide(_scores({"spam": 0.90}), POLICY).route == "auto"
    assert below.route == "review"
    assert below.reasons == ("spam at 90% is below its 95%-precision operating point (95%)",)
    uncertified = guarded_decision(_scores({"fraud": 0.99}), POLICY, points)
    assert uncertified.route == "review"
    assert "fraud (99%) has no operating point meeting its 85% precision target" in uncertified.reasons
    nothing = guarded_decision(_scores({}), POLICY, points)
    assert nothing.route == "auto" and nothing.category == "none"


_LEVELS = POLICY.severity_names
_probability = st.floats(0.0, 1.0)
_fraction = st.floats(0.0, 1.0)
_POINTS = {n: _point(n, 0.9) for n in POLICY.category_names}


@st.composite
def category_scores(draw: st.DrawFn) -> dict[str, float]:
    """A few categories anywhere in [0, 1], the rest confidently absent: many such tickets route auto."""
    active = draw(st.lists(st.sampled_from(POLICY.category_names), max_size=3, unique=True))
    return {n: draw(_probability if n in active else st.floats(0.0, 0.1)) for n in POLICY.category_names}


@st.composite
def severities(draw: st.DrawFn) -> dict[str, float]:
    """One dominant level (any of them) and a random remainder spread over the others."""
    top = draw(st.sampled_from(_LEVELS))
    share = draw(st.floats(0.5, 1.0))
    rest = [draw(st.floats(0.0, 1.0)) for _ in _LEVELS]
    total = sum(rest) or 1.0
    return {n: share if n == top else (1 - share) * r / total for n, r in zip(_LEVELS, rest, strict=True)}


def _with(scores: Scores, name: str, p: float) -> Scores:
    return Scores(categories={**scores.categories, name: p}, severity=scores.severity)


def _route(scores: Scores, guarded: bool) -> str:
    return (guarded_decision(scores, POLICY, _POINTS) if guarded else decide(scores, POLICY)).route


@settings(max_examples=400, deadline=None)
@given(category_scores(), severities(),
       st.sampled_from(POLICY.category_names), _fraction, _fraction, st.booleans())
def test_more_confidence_in_the_top_category_never_moves_auto_to_review(
    cats: dict[str, float], severity: dict[str, float], top: str, at: float, up: float, guarded: bool
) -> None:
    """Raising the probability of the top predicted category keeps an auto ticket auto (decide and guarded)."""
    th = POLICY.category(top).threshold
    # Make `top` the highest score and a yes (the model says it applies), so more probability = more confidence.
    p = max(max(cats.values()), th + at * (1.0 - th))
    scores = Scores(categories={**cats, top: p}, severity=severity)
    raised = _with(scores, top, p + up * (1.0 - p))
    if _route(scores, guarded) == "auto":
        assert _route(raised, guarded) == "auto", (scores, raised)


@settings(max_examples=400, deadline=None)
@given(category_scores(), severities(),
       st.sampled_from(POLICY.category_names), _fraction, _fraction, st.booleans())
def test_more_confidence_in_a_no_never_moves_auto_to_review(
    cats: dict[str, float], severity: dict[str, float], name: str, at: float, down: float, guarded: bool
) -> None:
    """Lowering a category the model says no to (more sure it does not apply) keeps an auto ticket auto."""
    th = POLICY.category(name).threshold
    p = at * th * 0.999  # below the decision threshold: the model says no
    scores = Scores(categories={**cats, name: p}, severity=severity)
    lowered = _with(scores, name, p * down)
    if _route(scores, guarded) == "auto":
        assert _route(lowered, guarded) == "auto", (scores, lowered)


def test_the_invariant_tests_reach_auto_tickets() -> None:
    """Guard against a vacuous property: confident tickets of the kind generated above do route auto."""
    scores = Scores(categories={n: 0.05 for n in POLICY.category_names} | {"spam": 0.97}, severity=SEVERITY_NONE)
    assert decide(scores, POLICY).route == "auto"
    assert _route(scores, guarded=True) == "auto"
