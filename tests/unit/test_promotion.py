"""The promotion gate on hand-written paired decisions; expert labels overriding source labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.data.merge import merge_expert_labels
from triage.data.schema import Example
from triage.promotion import (
    PairedDecisions,
    evaluate_gate,
    paired_decisions,
    paired_macro_f1_interval,
    paired_recall_interval,
)
from triage.taxonomy import Promotion

CATS = ("hate", "privacy")
LEVELS = ("none", "low", "medium", "high", "critical")


def build(champion_hits: dict[str, list[bool]], challenger_hits: dict[str, list[bool]], negatives: int = 20,
          critical: tuple[list[bool], list[bool]] | None = None) -> PairedDecisions:
    """Positives of each category (one block of rows each) then `negatives` clean rows nobody flags.

    `*_hits[c][i]` says whether the model flags positive i of category c; `critical` gives each model's hits on
    extra rows labelled critical (and no category).
    """
    rows_y, rows_a, rows_b, sev, sev_a, sev_b = [], [], [], [], [], []
    for j, cat in enumerate(CATS):
        for hit_a, hit_b in zip(champion_hits.get(cat, []), challenger_hits.get(cat, []), strict=True):
            y = [0.0] * len(CATS)
            y[j] = 1.0
            rows_y.append(y)
            rows_a.append([k == j and hit_a for k in range(len(CATS))])
            rows_b.append([k == j and hit_b for k in range(len(CATS))])
            sev.append(2)
            sev_a.append(2)
            sev_b.append(2)
    for hit_a, hit_b in zip(*(critical or ([], [])), strict=True):
        rows_y.append([np.nan] * len(CATS))
        rows_a.append([False] * len(CATS))
        rows_b.append([False] * len(CATS))
        sev.append(4)
        sev_a.append(4 if hit_a else 2)
        sev_b.append(4 if hit_b else 2)
    for _ in range(negatives):
        rows_y.append([0.0] * len(CATS))
        rows_a.append([False] * len(CATS))
        rows_b.append([False] * len(CATS))
        sev += [0]
        sev_a += [0]
        sev_b += [0]
    return paired_decisions(CATS, np.array(rows_y), np.array(rows_a), np.array(rows_b), np.array(sev),
                            np.array(sev_a), np.array(sev_b), LEVELS)


def by_rule(gate: object) -> dict:
    return {r.rule: r for r in gate.results}  # type: ignore[attr-defined]


def test_equal_models_pass_every_rule_with_a_zero_interval() -> None:
    hits = {"hate": [True] * 30 + [False] * 10, "privacy": [True, False, True, True, False]}
    gate = evaluate_gate(build(hits, hits, critical=([True, False], [True, False])), Promotion(), prefix="golden/")
    assert gate.passed and not gate.inconclusive
    rules = by_rule(gate)
    assert set(rules) == {"golden/macro_f1", "golden/hate_recall", "golden/privacy_recall",
                          "golden/severity_recall_critical"}
    for r in rules.values():
        assert r.verdict == "pass" and (r.low, r.high, r.difference) == (0.0, 0.0, 0.0), r.detail
    assert "interval [+0.00, +0.00]" in rules["golden/hate_recall"].detail


def test_a_recall_drop_on_five_examples_is_inconclusive_and_does_not_block() -> None:
    # The case: privacy recall 100% -> 20% measured on five examples.
    champion = {"hate": [True] * 200, "privacy": [True] * 5}
    challenger = {"hate": [True] * 200, "privacy": [True, False, False, False, False]}
    gate = evaluate_gate(build(champion, challenger), Promotion(), prefix="golden/")
    privacy = by_rule(gate)["golden/privacy_recall"]
    assert privacy.verdict == "inconclusive" and privacy.passed
    assert (privacy.champion, privacy.challenger, privacy.n) == (100.0, 20.0, 5)
    assert privacy.low is not None and privacy.high is not None
    assert privacy.low <= -80.0 <= privacy.high and privacy.high > -2.0  # the sample allows no drop at all
    assert "inconclusive (n=5)" in privacy.detail and "95% interval [" in privacy.detail
    # The same five examples move macro-F1 by a third (two categories here): just as inconclusive, not a failure.
    macro = by_rule(gate)["golden/macro_f1"]
    assert macro.verdict == "inconclusive" and macro.difference == pytest.approx(-100 / 3)
    assert gate.passed and {r.rule for r in gate.inconclusive} == {"golden/privacy_recall", "golden/macro_f1"}
    assert by_rule(gate)["golden/hate_recall"].verdict == "pass"


def test_a_large_recall_drop_on_500_examples_fails() -> None:
    rng = np.random.default_rng(1)
    champion = rng.random(500) < 0.9
    challenger = champion & (rng.random(500) < 0.65)  # loses about a third of what the champion found
    gate = evaluate_gate(build({"hate": list(champion)}, {"hate": list(challenger)}), Promotion())
    hate = by_rule(gate)["hate_recall"]
    assert hate.verdict == "fail" and not gate.passed
    assert hate.high is not None and hate.high < -2.0 and hate.n == 500
    assert "a drop beyond the allowed 2.00" in hate.detail
    assert by_rule(gate)["macro_f1"].verdict == "fail"  # F1 follows recall down


def test_a_one_point_drop_on_many_examples_passes_only_when_the_interval_allows_it() -> None:
    # 1 of 2000 positives lost: within the 2-point tolerance and the interval shows it.
    champion = [True] * 2000
    challenger = [True] * 1999 + [False]
    hate = by_rule(evaluate_gate(build({"hate": champion}, {"hate": challenger}), Promotion()))["hate_recall"]
    assert hate.verdict == "pass" and hate.low is not None and hate.low > -2.0


def test_critical_recall_with_zero_tolerance_and_no_critical_example() -> None:
    lost = build({"hate": [True] * 10}, {"hate": [True] * 10}, critical=([True] * 60, [False] * 60))
    critical = by_rule(evaluate_gate(lost, Promotion()))["severity_recall_critical"]
    assert critical.verdict == "fail" and "champion 100.00, challenger 0.00" in critical.detail
    none = by_rule(evaluate_gate(build({"hate": [True]}, {"hate": [True]}), Promotion()))
    assert none["severity_recall_critical"].verdict == "not measured" and none["severity_recall_critical"].passed


def test_a_category_without_positives_is_not_gated_and_a_better_challenger_passes() -> None:
    champion = {"hate": [True] * 40 + [False] * 60}
    challenger = {"hate": [True] * 90 + [False] * 10}
    rules = by_rule(evaluate_gate(build(champion, challenger), Promotion()))
    assert "privacy_recall" not in rules
    assert rules["hate_recall"].verdict == "pass" and rules["hate_recall"].difference == pytest.approx(50.0)
    assert rules["macro_f1"].verdict == "pass"


def test_the_gate_is_seeded_and_deterministic() -> None:
    rng = np.random.default_rng(7)
    a, b = list(rng.random(80) < 0.7), list(rng.random(80) < 0.6)
    decisions = build({"hate": a}, {"hate": b})
    first = evaluate_gate(decisions, Promotion()).as_dict()
    assert first == evaluate_gate(decisions, Promotion()).as_dict()
    other = evaluate_gate(decisions, Promotion(seed=1)).as_dict()
    f1 = [next(r for r in g["results"] if r["rule"] == "macro_f1") for g in (first, other)]  # type: ignore[index]
    assert f1[0]["difference"] == f1[1]["difference"]  # the point estimate does not depend on the seed


def test_the_macro_f1_interval_narrows_with_more_examples() -> None:
    def width(n: int) -> float:
        rng = np.random.default_rng(3)
        y = (rng.random((n, 2)) < 0.3).astype(float)
        a = (y == 1) & (rng.random((n, 2)) < 0.8)
        b = (y == 1) & (rng.random((n, 2)) < 0.7)
        _, _, _, low, high = paired_macro_f1_interval(y, a, b, 0.95, 1000, 0)
        return high - low

    assert width(2000) < width(100) / 2


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="champion must have shape"):
        PairedDecisions(CATS, np.zeros((3, 2)), np.zeros((2, 2), bool), np.zeros((3, 2), bool), np.zeros(3),
                        np.zeros(3), np.zeros(3), 4)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_recall_interval_holds_the_estimate_and_is_antisymmetric(pairs: list[tuple[bool, bool]],
                                                                 confidence: float) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    diff, low, high = paired_recall_interval(a, b, confidence)
    assert -1.0 - 1e-12 <= low <= diff <= high <= 1.0 + 1e-12
    assert diff == pytest.approx(b.mean() - a.mean())
    back, back_low, back_high = paired_recall_interval(b, a, confidence)
    assert (back, back_low, back_high) == pytest.approx((-diff, -high, -low))
    # A challenger that finds everything the champion finds never fails a recall rule.
    superset = paired_recall_interval(a, a | b, confidence)
    assert superset[1] >= -1e-12 or superset[0] >= 0


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**16))
def test_identical_models_always_pass(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hits = list(rng.random(n) < 0.5)
    gate = evaluate_gate(build({"hate": hits}, {"hate": hits}), Promotion(seed=seed))
    assert gate.passed and all(r.verdict in ("pass", "not measured") for r in gate.results)


def test_expert_label_overrides_source_label_for_the_same_text() -> None:
    base = [Example("You are an idiot", {"harassment": 0}, "low", "olid"),
            Example("buy cheap pills", {"spam": 1}, "low", "sms_spam")]
    expert = [Example("you are an  IDIOT", {"harassment": 1, "hate": 0}, "medium", "expert")]
    merged = merge_expert_labels(base, expert, expert_weight=3.0)
    assert len(merged) == 2
    override = next(e for e in merged if e.source == "expert")
    assert override.labels == {"harassment": 1, "hate": 0} and override.weight == 3.0
