"""Report metrics on hand-written arrays: AUPRC without unknown labels, slices, auto-clear misses, review shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.routing_report import clear_rows, severity_rows
from triage.conformal import clopper_pearson_upper
from triage.quality import (
    auprc,
    auto_clear_miss,
    category_metrics,
    clean_rows,
    group_indices,
    quality_metrics,
    review_cause,
    review_causes,
    review_shares,
    severe_recall,
    slice_metrics,
)
from triage.taxonomy import load_policy

NAN = math.nan
POLICY = load_policy()


def test_auprc_leaves_unknown_labels_out() -> None:
    # Known rows: positives scored 0.9 and 0.4, negatives 0.6 and 0.1 -> ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-).
    # Average precision = (1/1 + 2/3) / 2.
    y = np.array([1, 0, 1, 0, NAN, NAN])
    p = np.array([0.9, 0.6, 0.4, 0.1, 0.99, 0.0])
    assert auprc(y, p) == pytest.approx((1 + 2 / 3) / 2)
    # Had the unknown rows counted as negatives, the top-scored unknown would lower it.
    assert auprc(np.nan_to_num(y), p) < auprc(y, p)


def test_auprc_is_undefined_without_both_classes() -> None:
    assert auprc(np.array([0, 0, NAN]), np.array([0.1, 0.2, 0.3])) is None
    assert auprc(np.array([1, 1, NAN]), np.array([0.1, 0.2, 0.3])) is None
    assert auprc(np.full(3, NAN), np.array([0.1, 0.2, 0.3])) is None


def test_category_metrics_and_macro_skip_what_is_undefined() -> None:
    y = np.array([[1, NAN], [0, NAN], [1, 0], [0, 0]])
    p = np.array([[0.9, 0.8], [0.2, 0.7], [0.7, 0.1], [0.6, 0.3]])
    per = category_metrics(y, p, ["a", "b"], {"a": 0.5, "b": 0.5})
    # a: ranking 0.9(+) 0.7(+) 0.6(-) 0.2(-) -> AP 1; at 0.5: 2 TP, 1 FP -> F1 = 0.8.
    assert per["a"]["auprc"] == pytest.approx(1.0)
    assert per["a"]["f1"] == pytest.approx(0.8)
    assert per["a"]["positives"] == 2 and per["a"]["known"] == 4
    # b: two known negatives, no positive: nothing to say.
    assert per["b"]["auprc"] is None and per["b"]["f1"] is None and per["b"]["known"] == 2


def test_slices_group_rows_by_source_and_average_only_defined_categories() -> None:
    y = np.array([[1, NAN], [0, NAN], [NAN, 1], [NAN, 0], [NAN, 1]])
    p = np.array([[0.9, 0.0], [0.1, 0.0], [0.0, 0.3], [0.0, 0.6], [0.0, 0.8]])
    keys = ["s1", "s1", "s2", "s2", "s2"]
    assert {k: v.tolist() for k, v in group_indices(keys).items()} == {"s1": [0, 1], "s2": [2, 3, 4]}
    out = slice_metrics(y, p, ["a", "b"], {"a": 0.5, "b": 0.5}, keys)
    assert out["s1"]["rows"] == 2 and out["s1"]["macro_auprc"] == pytest.approx(1.0)
    # s2, category b: ranking 0.8(+) 0.6(-) 0.3(+) -> AP (1 + 2/3) / 2; category a is unknown there.
    assert out["s2"]["macro_auprc"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["s2"]["categories"]["a"]["auprc"] is None
    # ECE of s1: cells (1, 0.9) and (0, 0.1) fall in different bins, each 0.1 off.
    assert out["s1"]["ece"] == pytest.approx(0.1)


def test_quality_metrics_focus_is_the_focus_source_and_categories_only() -> None:
    y = np.array([[1, 1], [0, 0], [1, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [0.1, 0.9], [0.2, 0.9], [0.8, 0.1]])
    sev_y = np.array([2, 0, -1, 1])
    sev_p = np.eye(3)[[2, 0, 0, 0]]
    out = quality_metrics(y, p, ["a", "b"], {"a": 0.5, "b": 0.5}, sev_y, sev_p, ["none", "low", "high"],
                          ["om", "om", "x", "x"], ["en", "en", "pt", "pt"], "om", ["a", "missing"])
    assert out["focus"]["rows"] == 2 and list(out["focus"]["categories"]) == ["a"]
    assert out["focus"]["macro_auprc"] == pytest.approx(1.0)
    assert set(out["by_language"]) == {"en", "pt"}
    # Severity over the three known rows: right, right, wrong by one level.
    assert out["severity"]["severity_accuracy"] == pytest.approx(2 / 3)
    assert out["severity"]["severity_mae"] == pytest.approx(1 / 3)


def test_auto_clear_miss_counts_auto_routed_unflagged_positives_only() -> None:
    y = np.array([1, 1, 1, 1, 0, NAN, 1])
    auto = np.array([True, True, False, True, True, True, False])
    flagged = np.array([False, True, False, False, False, False, True])
    out = auto_clear_miss(y, auto, flagged, delta=0.1)
    # Positives: rows 0, 1, 2, 3, 6. Cleared: 0 and 3 (auto, not flagged); 1 is asserted, 2 and 6 are reviewed.
    assert out["positives"] == 5 and out["auto_cleared"] == 2
    assert out["share"] == pytest.approx(0.4)
    assert out["upper_bound"] == pytest.approx(clopper_pearson_upper(2, 5, 0.1))
    assert auto_clear_miss(np.array([0, NAN]), np.array([True, True]), np.array([False, False]))["share"] is None


def test_clear_rows_judge_against_the_policy_and_name_small_samples() -> None:
    n = 60
    y = np.zeros((n + 5, 2))
    y[:n, 0] = 1  # hate: 60 positives, 2 of them auto-cleared (3.3% <= 5%)
    y[:5, 1] = 1  # violence: only 5 positives
    auto = np.zeros(n + 5, dtype=bool)
    auto[:2] = True
    rows = clear_rows(y, auto, np.zeros_like(y, dtype=bool), ["hate", "violence"], POLICY, {}, 0.1, 50)
    assert rows[0]["status"] == "pass" and rows[0]["share"] == pytest.approx(2 / 60)
    assert rows[0]["target"] == POLICY.category("hate").max_auto_clear_miss
    assert rows[1]["status"] == "insufficient test positives (5 < 50)"
    auto[:5] = True  # 5 of 60 hate positives cleared: 8.3% > 5%
    assert clear_rows(y, auto, np.zeros_like(y, dtype=bool), ["hate", "violence"], POLICY, {}, 0.1, 50)[0][
        "status"] == "miss"


def test_severe_recall_counts_reviewed_or_escalated_as_caught() -> None:
    ranks = np.array([3, 4, 3, 3, 1, -1])
    auto = np.array([True, False, True, False, True, True])
    predicted = np.array([3, 0, 1, 0, 0, 0])
    out = severe_recall(ranks, auto, predicted, first_severe=3)
    # Severe rows 0-3: 0 escalated (predicted high), 1 and 3 reviewed, 2 auto-routed as low: missed.
    assert out["severe"] == 4 and out["caught"] == 3 and out["recall"] == pytest.approx(0.75)
    rows = severity_rows(ranks, auto, predicted, POLICY, 0.1, min_positives=1)
    assert [r["severity"] for r in rows] == ["high or worse", "high", "critical"]
    assert [r["status"] for r in rows] == ["miss", "miss", "pass"]
    assert rows[0]["target_recall"] == pytest.approx(1 - POLICY.routing.max_severe_miss)


def test_review_shares_overall_per_source_and_for_clean_texts() -> None:
    y = np.array([[0, NAN], [0, 0], [1, NAN], [NAN, NAN], [0, 1], [NAN, 0]])
    assert clean_rows(y).tolist() == [True, True, False, False, False, True]
    review = np.array([True, False, True, True, False, False])
    out = review_shares(review, y, ["a", "a", "a", "b", "b", "b"])
    assert out["overall"]["review_share"] == pytest.approx(3 / 6)
    assert out["overall"]["clean_rows"] == 3 and out["overall"]["clean_review_share"] == pytest.approx(1 / 3)
    assert out["by_key"]["a"]["review_share"] == pytest.approx(2 / 3)
    assert out["by_key"]["a"]["clean_review_share"] == pytest.approx(1 / 2)
    assert out["by_key"]["b"]["clean_rows"] == 1 and out["by_key"]["b"]["clean_review_share"] == 0.0


def test_every_kind_of_routing_reason_names_what_it_holds_the_ticket_for() -> None:
    from dataclasses import replace

    from tests.unit.test_conformal_clear import CLEAR, POINTS, _scores
    from triage.conformal import SEVERE, assured_decision

    cats = POLICY.category_names
    reasons = {
        "hate": assured_decision(_scores({"hate": 0.3}), POLICY, POINTS, CLEAR).reasons,  # above its clear bound
        "spam": assured_decision(_scores({"spam": 0.85}), POLICY, POINTS, CLEAR).reasons,  # below its op. point
        "fraud": assured_decision(_scores({"fraud": 0.3}), POLICY, POINTS,  # no clear point: unsure
                                  {k: v for k, v in CLEAR.items() if k != "fraud"}).reasons,
        "self_harm": assured_decision(_scores({"self_harm": 0.97}), POLICY, POINTS, CLEAR).reasons,  # always
        "violence": assured_decision(_scores({"violence": 0.7}), POLICY,  # no operating point
                                     {**POINTS, "violence": replace(POINTS["violence"], threshold=None)},
                                     CLEAR).reasons,
        "severity": assured_decision(_scores({}, {"none": 0.6, "low": 0.05, "medium": 0.0, "high": 0.2,
                                                  "critical": 0.15}), POLICY, POINTS, CLEAR).reasons,
    }
    for cause, rs in reasons.items():
        assert rs, cause
        assert {review_cause(r, cats) for r in rs} >= {cause}, rs
    assert SEVERE not in cats
    assert review_cause("severity critical is always reviewed by a person (40%)", cats) == "severity"
    assert review_cause("spam and fraud are too close to tell apart (95% vs 93%)", cats) == "spam"
    assert review_cause("something new", cats) == "other"
    # The scorer's own reasons (a card looser than the policy) name what they hold the ticket for too.
    assert review_cause("violence: the model's auto-clear bound lets up to 5% skip review, ...", cats) == "violence"
    assert review_cause("severity: the model's auto-clear bound lets up to 5% skip review, ...", cats) == "severity"


def test_review_causes_count_clean_texts_held_back_and_held_back_by_one_cause_alone() -> None:
    cats = ["hate", "spam"]
    # Rows 0-3 clean, row 4 a hate positive (not counted), row 5 unlabelled (not counted).
    y = np.array([[0, 0], [0, 0], [0, NAN], [0, 0], [1, 0], [NAN, NAN]])
    review = np.array([True, True, True, False, True, True])
    reasons = [["hate at 9% is above its auto-clear bound (5%; ...)"],
               ["hate at 9% is above its auto-clear bound", "may be high severity or worse (40%; bound 30%)"],
               ["unsure about spam: score 30%, needs 75% confidence either way"],
               [], ["hate is always reviewed"], ["spam at 50% ..."]]
    rows = {r["cause"]: r for r in review_causes(reasons, review, y, cats)}
    assert set(rows) == {"hate", "severity", "spam"}
    assert (rows["hate"]["held"], rows["hate"]["alone"]) == (2, 1)
    assert (rows["severity"]["held"], rows["severity"]["alone"]) == (1, 0)
    assert (rows["spam"]["held"], rows["spam"]["alone"]) == (1, 1)
    assert rows["hate"]["held_share"] == pytest.approx(2 / 4) and rows["hate"]["clean_rows"] == 4
    assert review_causes(reasons, review, y, cats)[0]["cause"] == "hate"  # most held back first
