"""The promotion gate on hand-written metrics; expert labels overriding source labels."""

from __future__ import annotations

from triage.data.merge import merge_expert_labels
from triage.data.schema import Example
from triage.promotion import evaluate_gate
from triage.taxonomy import Promotion

CATS = ["hate", "spam"]


def m(macro: float, hate_r: float, spam_r: float, crit: float | None = 0.5) -> dict[str, float]:
    out = {"golden/macro_f1": macro, "golden/hate_recall": hate_r, "golden/spam_recall": spam_r}
    if crit is not None:
        out["golden/severity_recall_critical"] = crit
    return out


def test_equal_or_better_challenger_passes() -> None:
    gate = evaluate_gate(m(0.60, 0.5, 0.9), m(0.61, 0.5, 0.92), Promotion(), CATS, prefix="golden/")
    assert gate.passed and not gate.failures


def test_worse_challenger_is_refused_with_both_numbers() -> None:
    gate = evaluate_gate(m(0.60, 0.50, 0.90, 0.5), m(0.58, 0.45, 0.895, 0.4), Promotion(), CATS, prefix="golden/")
    assert not gate.passed
    failed = {r.rule: r for r in gate.failures}
    assert set(failed) == {"golden/macro_f1", "golden/hate_recall", "golden/severity_recall_critical"}
    assert "champion 60.00, challenger 58.00" in failed["golden/macro_f1"].detail
    assert "exceeds the allowed 0.50" in failed["golden/macro_f1"].detail
    assert "champion 50.00, challenger 45.00" in failed["golden/hate_recall"].detail


def test_small_drops_within_the_rules_pass() -> None:
    gate = evaluate_gate(m(0.600, 0.50, 0.90), m(0.596, 0.485, 0.90), Promotion(), CATS, prefix="golden/")
    assert gate.passed


def test_a_dropped_category_counts_as_zero_recall() -> None:
    challenger = m(0.7, 0.5, 0.9)
    del challenger["golden/spam_recall"]
    gate = evaluate_gate(m(0.6, 0.5, 0.9), challenger, Promotion(), CATS, prefix="golden/")
    assert [r.rule for r in gate.failures] == ["golden/spam_recall"]


def test_unmeasured_critical_recall_is_not_gated() -> None:
    gate = evaluate_gate(m(0.6, 0.5, 0.9, None), m(0.6, 0.5, 0.9, None), Promotion(), CATS, prefix="golden/")
    assert gate.passed
    assert "not measured" in gate.results[-1].detail


def test_expert_label_overrides_source_label_for_the_same_text() -> None:
    base = [Example("You are an idiot", {"harassment": 0}, "low", "olid"),
            Example("buy cheap pills", {"spam": 1}, "low", "sms_spam")]
    expert = [Example("you are an  IDIOT", {"harassment": 1, "hate": 0}, "medium", "expert")]
    merged = merge_expert_labels(base, expert, expert_weight=3.0)
    assert len(merged) == 2
    override = next(e for e in merged if e.source == "expert")
    assert override.labels == {"harassment": 1, "hate": 0} and override.weight == 3.0
