"""Expert labels that come back through the review service (webhook or sync) are joined to the decisions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.unit.review.conftest import scored
from triage.decisions.outcomes import Outcomes
from triage.decisions.recorder import Recorder
from triage.decisions.store import DecisionStore, parse_time, utcnow
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import DecisionsSettings, LabelStudioSettings
from triage.taxonomy import Policy


def test_webhook_and_sync_labels_reach_the_decision_log(tmp_path: Path, policy: Policy) -> None:
    backend = InMemoryReviewBackend()
    service = ReviewService(Outbox(tmp_path / "review.db"), backend, policy,
                            LabelStudioSettings(pull_interval_s=0, webhook_url="http://127.0.0.1:1/v1/review/webhook"))
    store = DecisionStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.migrate()
    outcomes = Outcomes(store)
    service.on_label, service.on_retract = outcomes.on_label, outcomes.on_retract
    rec = Recorder(store, DecisionsSettings(), "2026.11.1")
    decided = utcnow() - timedelta(hours=2)
    items = [scored("t0", 0.3), scored("t1", 0.4)]
    rec.record(items, "baseline", "v1", None, decided)
    rec.flush()
    service.enqueue(items, "baseline", "v1")
    service.sync_now()
    pid = next(iter(backend.projects))
    t0, t1 = sorted(backend.projects[pid].tasks)

    ann = backend.annotate(t0, "7", result_for(["spam"], "low"))
    service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid))
    (lab,) = store.for_ticket("t0")[0]["labels"]
    assert lab["category_correct"] is True and lab["severity_correct"] is True and lab["via"] == "webhook"
    labelled = parse_time(ann.created_at)
    assert labelled is not None
    assert abs(lab["wait_seconds"] - (labelled - decided).total_seconds()) < 1.0
    assert 7000 < lab["wait_seconds"] < 7400

    backend.annotate(t1, "8", result_for(["hate"], "high"))  # only seen by the pull
    service.pull()
    (lab,) = store.for_ticket("t1")[0]["labels"]
    assert lab["category_correct"] is False and lab["severity_correct"] is False and lab["via"] == "sync"

    service.record_webhook(webhook_payload("ANNOTATIONS_DELETED", ann, pid))
    assert store.for_ticket("t0")[0]["labels"] == []
    service.outbox.close()
