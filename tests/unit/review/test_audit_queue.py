"""The label-audit queue over the label store: hand-written annotations and a fake classifier with known scores."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from triage.models.base import ModelCard, Prediction
from triage.review.annotations import result_for
from triage.review.outbox import AnnotationRecord
from triage.review.service import ReviewService


class FakeClassifier:
    """Known spam probabilities per text; every other category 0.01. Categories in reverse policy order."""

    def __init__(self, spam: Mapping[str, float], categories: Sequence[str], levels: Sequence[str]) -> None:
        self.spam = dict(spam)
        self.card = ModelCard(kind="fake", categories=list(reversed(categories)), severity_levels=list(levels),
                              policy_name="default", policy_version="test", policy_digest="")
        self.seen: list[str] = []

    def predict(self, texts: Sequence[str]) -> Prediction:
        self.seen.extend(texts)
        cats = np.full((len(texts), len(self.card.categories)), 0.01)
        cats[:, self.card.categories.index("spam")] = [self.spam[t] for t in texts]
        sev = np.full((len(texts), len(self.card.severity_levels)), 1.0 / len(self.card.severity_levels))
        return Prediction(categories=cats, severity=sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


_next_id = iter(range(1, 10_000))


def annotate(service: ReviewService, task_id: int, annotator: str, categories: list[str],
             severity: str = "low", updated_at: str = "2026-01-01T00:00:00") -> None:
    """Store one reviewer's annotation of the task of ticket t<task_id> (as the webhook would)."""
    service.outbox.record_annotation(AnnotationRecord(
        annotation_id=next(_next_id), task_id=task_id, ticket_id=f"t{task_id}", text=f"ticket text {task_id}",
        annotator=annotator, categories=tuple(categories), severity=severity, rationale=None,
        result=json.dumps(result_for(categories, severity)), created_at=updated_at, updated_at=updated_at,
        model_version="v1", policy_version=service.policy.version))


# Tasks 0-5 labelled spam, 6-11 labelled none. The model agrees except on 5 (sure it is not spam) and 11 (sure
# it is). Task 12: two reviewers split on spam vs fraud and on severity; the model sits on the fence.
SPAM = {**{f"ticket text {i}": 0.9 for i in range(5)}, "ticket text 5": 0.02,
        **{f"ticket text {i}": 0.05 for i in range(6, 11)}, "ticket text 11": 0.97, "ticket text 12": 0.5}


@pytest.fixture
def labelled(service: ReviewService) -> ReviewService:
    for i in range(12):
        annotate(service, i, "alice", ["spam"] if i < 6 else ["none"])
    annotate(service, 12, "alice", ["spam"], "low", "2026-01-01T00:00:00")
    annotate(service, 12, "bob", ["fraud"], "high", "2026-01-02T00:00:00")
    return service


def _fake(service: ReviewService) -> FakeClassifier:
    return FakeClassifier(SPAM, service.policy.category_names, service.policy.severity_names)


def test_audit_lists_confident_contradictions_then_disagreements_with_reasons(labelled: ReviewService) -> None:
    clf = _fake(labelled)
    items = labelled.audit_items(clf)
    assert [(a.item_id, a.kind) for a in items] == [
        ("t5", "suspected_label_error"), ("t11", "suspected_label_error"), ("t12", "annotator_disagreement")]
    assert [a.score for a in items] == pytest.approx([0.98, 0.97, 0.5])
    t5, t11, t12 = items
    assert t5.categories == ("spam",) and t5.reason.startswith("labelled spam, but the model gives it 2%")
    assert t11.categories == ("spam",) and t11.reason.startswith("labelled not spam, but the model gives spam 97%")
    assert set(t12.categories) == {"spam", "fraud"}
    assert t12.reason.startswith("reviewers disagree (adjudication waiting): ")
    assert "reviewers split on spam: 1 of 2 said yes" in t12.reason
    assert "reviewers split on severity" in t12.reason
    # One prediction per labelled task, on its text; the split task is not a label until adjudicated.
    assert sorted(clf.seen) == sorted(t for t in SPAM if t != "ticket text 12")


def test_audit_limit_keeps_the_most_suspicious(labelled: ReviewService) -> None:
    assert [a.item_id for a in labelled.audit_items(_fake(labelled), limit=1)] == ["t5"]


def test_too_few_labels_per_class_means_no_label_error_flags(labelled: ReviewService) -> None:
    items = labelled.audit_items(_fake(labelled), min_per_class=7)  # only 6 (or 7 with t12) of each
    assert [(a.item_id, a.kind) for a in items] == [("t12", "annotator_disagreement")]


def test_an_empty_label_store_gives_an_empty_queue(service: ReviewService) -> None:
    clf = _fake(service)
    assert service.audit_items(clf) == []
    assert clf.seen == []


def test_cli_audit_prints_and_writes_jsonl(labelled: ReviewService, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from triage.adapters import mlflow_registry
    from triage.models.base import LoadedModel
    from triage.settings import get_settings
    from triage_cli.review import review_app

    labelled.outbox.close()
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "true")  # the audit reads the label store, no network
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__OUTBOX_PATH", str(labelled.outbox.path))
    get_settings.cache_clear()
    loaded = LoadedModel(_fake(labelled), "triage-classifier", "3", "champion", None, {})
    monkeypatch.setattr(mlflow_registry, "load_model", lambda settings, alias="champion": loaded)
    out = tmp_path / "audit.jsonl"
    try:
        result = CliRunner().invoke(review_app, ["audit", "--out", str(out), "--json"])
        table = CliRunner().invoke(review_app, ["audit", "--limit", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["rank"], r["item_id"], r["kind"]) for r in rows] == [
        (1, "t5", "suspected_label_error"), (2, "t11", "suspected_label_error"), (3, "t12", "annotator_disagreement")]
    assert rows[0]["text"] == "ticket text 5" and rows[0]["labelled"] == ["spam"] and rows[0]["task_id"] == "5"
    assert rows[0]["reason"].startswith("labelled spam")
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert printed == rows
    assert table.exit_code == 0, table.output
    assert "t5" in table.stdout and "t11" in table.stdout and "t12" not in table.stdout
    assert "suspected_label_error" in table.stdout
