"""Label audit on hand-written label and probability matrices."""

from __future__ import annotations

import numpy as np
import pytest

from triage.audit import (
    AuditItem,
    annotator_disagreements,
    audit_queue,
    confident_thresholds,
    dataset_disagreements,
    suspected_label_errors,
)
from triage.data.schema import Example

NAN = np.nan
# Columns: hate, spam. Rows 0-5 labelled hate=1, rows 6-11 hate=0; spam known on rows 6-11 only.
LABELS = np.array([
    [1, NAN], [1, NAN], [1, NAN], [1, NAN], [1, NAN], [1, NAN],
    [0, 0], [0, 0], [0, 0], [0, 1], [0, 1], [0, 1],
])
PROBA = np.array([
    [0.90, 0.5], [0.85, 0.5], [0.95, 0.5], [0.80, 0.5], [0.90, 0.5],
    [0.02, 0.5],   # 5: labelled hate, the model is sure it is not -> suspected error
    [0.05, 0.10], [0.10, 0.05], [0.08, 0.10],
    [0.97, 0.90],  # 9: labelled not hate, the model is sure it is -> suspected error
    [0.04, 0.95], [0.06, 0.85],
])


def test_confident_thresholds_are_per_class_mean_self_confidence() -> None:
    th = confident_thresholds(LABELS, PROBA, min_per_class=3)
    assert th[0, 1] == pytest.approx(np.mean([0.90, 0.85, 0.95, 0.80, 0.90, 0.02]))
    assert th[0, 0] == pytest.approx(np.mean([0.95, 0.90, 0.92, 0.03, 0.96, 0.94]))
    assert np.isnan(confident_thresholds(LABELS, PROBA, min_per_class=4)[1]).all()  # spam: 3 of each class


def test_suspected_errors_are_the_confident_contradictions() -> None:
    items = suspected_label_errors(LABELS, PROBA, ["hate", "spam"], item_ids=[f"T-{i}" for i in range(12)],
                                   min_per_class=3)
    assert [a.item_id for a in items] == ["T-5", "T-9"]
    first, second = items
    assert first.kind == "suspected_label_error" and first.categories == ("hate",)
    assert first.score == pytest.approx(0.98)
    assert first.reason.startswith("labelled hate, but the model gives it 2% (confidently not hate: 98% >= ")
    assert second.reason.startswith("labelled not hate, but the model gives hate 97% (>= ")
    # Unknown labels are never audited: the NaN spam cells of rows 0-5 raise nothing.
    assert all("spam" not in a.categories for a in items)


def test_a_row_can_be_flagged_for_several_categories() -> None:
    labels = np.array([[1, 0]] * 6 + [[0, 1]] * 6, dtype=float)
    proba = np.array([[0.9, 0.1]] * 5 + [[0.1, 0.9]] + [[0.1, 0.9]] * 6)
    items = suspected_label_errors(labels, proba, ["hate", "spam"])
    assert len(items) == 1 and items[0].item_id == "5" and items[0].categories == ("hate", "spam")
    assert "; labelled not spam" in items[0].reason


def test_no_flags_when_the_model_agrees_or_classes_are_too_small() -> None:
    labels = np.array([[1.0], [1.0], [0.0], [0.0]])
    assert suspected_label_errors(labels, np.array([[0.9], [0.8], [0.1], [0.2]]), ["hate"], min_per_class=2) == []
    assert suspected_label_errors(labels, np.array([[0.1], [0.8], [0.1], [0.9]]), ["hate"], min_per_class=3) == []
    with pytest.raises(ValueError, match="2 item ids for 4 rows"):
        suspected_label_errors(labels, labels, ["hate"], item_ids=["a", "b"])


def test_annotator_disagreement_names_the_split() -> None:
    votes = {
        "T-1": [(frozenset({"harassment"}), "medium"), (frozenset({"harassment"}), "medium")],
        "T-2": [(frozenset({"harassment"}), "medium"), (frozenset(), "medium"), (frozenset({"harassment"}), "high")],
        "T-3": [(frozenset({"spam"}), "low")],
        "T-4": [(frozenset({"hate"}), "high"), (frozenset({"harassment"}), "high")],
    }
    items = annotator_disagreements(votes, ["hate", "harassment", "spam"])
    assert [a.item_id for a in items] == ["T-4", "T-2"]
    assert items[0].reason == "reviewers split on hate: 1 of 2 said yes; reviewers split on harassment: 1 of 2 said yes"
    assert items[0].score == pytest.approx(0.5)
    assert items[1].kind == "annotator_disagreement"
    assert items[1].reason == ("reviewers split on harassment: 2 of 3 said yes; "
                               "reviewers split on severity: medium 2, high 1")
    assert items[1].categories == ("harassment",)
    assert annotator_disagreements(votes, ["hate", "harassment", "spam"], min_agreement=0.6) == [items[0]]


def test_dataset_votes_below_the_agreement_bar_are_flagged() -> None:
    examples = [
        Example("t1", {"hate": 1}, "medium", "davidson", weight=0.6),
        Example("t2", {"hate": 1}, "medium", "davidson", weight=1.0),
        Example("t3", {"spam": 1}, "low", "sms_spam", weight=0.5),  # weight is not a vote share there
        Example("t4", {"hate": 1}, None, "expert_import", weight=0.1),  # not a shared source
    ]
    items = dataset_disagreements(examples, ["a", "b", "c", "d"], min_agreement=0.75)
    assert [(a.item_id, a.reason) for a in items] == [
        ("a", "davidson annotators agreed only 60% on this label (hate=1)")
    ]


def test_audit_queue_lists_each_item_once_strongest_first() -> None:
    a = AuditItem("T-1", "suspected_label_error", ("hate",), "x", 0.9)
    b = AuditItem("T-1", "annotator_disagreement", ("hate",), "y", 0.5)
    c = AuditItem("T-2", "annotator_disagreement", ("spam",), "z", 0.7)
    assert audit_queue([a], [b, c]) == [a, c]
    assert audit_queue([b, c], [a], limit=1) == [a]
