"""The decision log wired to the real review service: the audit sample reaches the review queue, and only usable
expert labels (not the ones the review service rejects) are joined to decisions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.unit.review.conftest import scored
from triage.decisions.service import AUDIT_REASON, build_decision_log
from triage.decisions.store import utcnow
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import DecisionsSettings, LabelStudioSettings, Settings
from triage.taxonomy import Policy


def _service(tmp_path: Path, policy: Policy) -> tuple[ReviewService, InMemoryReviewBackend]:
    backend = InMemoryReviewBackend()
    service = ReviewService(Outbox(tmp_path / "review.db"), backend, policy,
                            LabelStudioSettings(pull_interval_s=0, webhook_url="http://127.0.0.1:1/v1/review/webhook"))
    return service, backend


def _settings(tmp_path: Path, audit_rate: float) -> Settings:
    return Settings(home=tmp_path / "home", env="test", _env_file=None,  # type: ignore[call-arg]
                    decisions=DecisionsSettings(audit_rate=audit_rate))


def test_audit_sample_of_auto_decisions_is_queued_for_review(tmp_path: Path, policy: Policy) -> None:
    service, backend = _service(tmp_path, policy)
    log = build_decision_log(_settings(tmp_path, audit_rate=1.0), policy.version, service)
    assert log is not None
    log.start()
    try:
        log.recorder.record([scored("A-1", 0.95, route="auto"), scored("R-1", 0.4)], "triage", "1")
        log.recorder.flush()
    finally:
        log.stop()
    queued = service.outbox.queued("A-1")
    assert queued is not None  # the auto-routed audit ticket is a review item, not withdrawn
    assert service.outbox.queued("R-1") is None  # a review ticket is queued by the score route, not by the audit
    service.sync_now()
    (task,) = [t for p in backend.projects.values() for t in p.tasks.values()]
    assert task["data"]["ticket_id"] == "A-1"
    assert AUDIT_REASON in str(task["data"])
    service.outbox.close()


def test_rejected_annotation_is_not_an_expert_label(tmp_path: Path, policy: Policy) -> None:
    service, backend = _service(tmp_path, policy)
    log = build_decision_log(_settings(tmp_path, audit_rate=0.0), policy.version, service)
    assert log is not None
    log.start()
    try:
        item = scored("t0", 0.3)
        log.recorder.record([item], "triage", "1", decided_at=utcnow() - timedelta(hours=1))
        log.recorder.flush()
        service.enqueue([item], "triage", "1")
        service.sync_now()
        pid = next(iter(backend.projects))
        (task_id,) = backend.projects[pid].tasks
        ann = backend.annotate(task_id, "7", result_for(["spam"], "low"))
        service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid))
        (lab,) = log.store.for_ticket("t0")[0]["labels"]
        assert lab["category_correct"] is True
        # The same annotation edited into an unusable one (a category with the lowest severity): rejected by the
        # review service, so it no longer judges the decision.
        bad = backend.annotate(task_id, "7", result_for(["spam"], policy.severity_names[0]), ann.annotation_id)
        outcome = service.record_webhook(webhook_payload("ANNOTATION_UPDATED", bad, pid))
        assert "rejected" in outcome
        assert log.store.for_ticket("t0")[0]["labels"] == []
    finally:
        log.stop()
        service.outbox.close()
