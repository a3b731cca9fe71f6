"""The review push orders tasks by the configured selection strategy: usefulness stored, delivered, sent along."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from triage.errors import ReviewError
from triage.review.memory import InMemoryReviewBackend
from triage.review.outbox import Outbox, QueueItem
from triage.review.service import ReviewService
from triage.selection import STRATEGIES, Entropy, LeastConfidence
from triage.settings import LabelStudioSettings
from triage.taxonomy import Policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket

LOW_SEVERITY = {"none": 0.2, "low": 0.5, "medium": 0.3, "high": 0.0, "critical": 0.0}


def ticket(ticket_id: str, spam: float, fraud: float = 0.01, confidence: float = 0.5,
           severity: dict[str, float] | None = None) -> ScoredTicket:
    """A review-routed ticket with hand-written category probabilities (the scorer is not under test)."""
    return ScoredTicket(
        ticket=Ticket(ticket_id, f"text of {ticket_id}"),
        scores=Scores(categories={"spam": spam, "fraud": fraud}, severity=severity or LOW_SEVERITY),
        decision=Decision(category="spam", severity="low", priority=0.4, route="review",
                          reasons=("unsure",), confidence=confidence),
    )


def _service(tmp_path: Path, settings: LabelStudioSettings, policy: Policy, strategy: str,
             backend: InMemoryReviewBackend | None = None) -> ReviewService:
    return ReviewService(Outbox(tmp_path / f"{strategy}.db"), backend or InMemoryReviewBackend(), policy,
                         settings.model_copy(update={"strategy": strategy}))


def test_claim_delivers_least_confident_first(service: ReviewService) -> None:
    assert isinstance(service.strategy, LeastConfidence)  # the default
    # Least sure category: a 0.97, b 0.55 (closest to a coin flip), c 0.8 (fraud), d 0.65.
    service.enqueue([ticket("a", 0.97), ticket("b", 0.55), ticket("c", 0.02, fraud=0.8), ticket("d", 0.65)],
                    "m", "v1")
    claimed = service.outbox.claim(10, 60)
    assert [i.ticket_id for i in claimed] == ["b", "d", "c", "a"]
    assert [i.usefulness for i in claimed] == pytest.approx([0.9, 0.7, 0.4, 0.06])


def test_usefulness_orders_across_enqueue_batches_and_ties_go_oldest_first(service: ReviewService) -> None:
    service.enqueue([ticket("early-sure", 0.9), ticket("early-tie", 0.7)], "m", "v1")
    service.enqueue([ticket("late-unsure", 0.5), ticket("late-tie", 0.3)], "m", "v1")  # 0.3 is as unsure as 0.7
    order = [i.ticket_id for i in service.outbox.claim(10, 60)]
    assert order == ["late-unsure", "early-tie", "late-tie", "early-sure"]


def test_rescoring_a_waiting_ticket_updates_its_usefulness(service: ReviewService) -> None:
    service.enqueue([ticket("a", 0.9), ticket("b", 0.6)], "m", "v1")
    service.enqueue([ticket("a", 0.5)], "m", "v1")  # re-scored while still waiting: now the least sure
    assert [i.ticket_id for i in service.outbox.claim(10, 60)] == ["a", "b"]


def test_delivery_sends_most_useful_first_with_usefulness_in_task_data(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    tickets = [ticket(f"t{i}", spam=0.99 - i * 0.05, confidence=0.9 - i * 0.01) for i in range(10)]
    service.enqueue(tickets, "m", "v1")  # t9 (spam 0.54) is the least sure; batch size 7 -> two claims
    service.sync_now()
    (project,) = backend.projects.values()
    delivered = list(project.tasks.values())
    assert [t["data"]["ticket_id"] for t in delivered] == [f"t{i}" for i in range(9, -1, -1)]
    usefulness = [t["data"]["usefulness"] for t in delivered]
    assert usefulness == sorted(usefulness, reverse=True) and usefulness[0] == pytest.approx(0.92)
    assert {t["data"]["selection_strategy"] for t in delivered} == {"least_confidence"}
    # The prediction score (what Label Studio's uncertainty sampling orders by, lowest first) follows usefulness;
    # the model's confidence stays in the task data.
    scores = [t["predictions"][0].score for t in delivered]
    assert scores == sorted(scores)
    assert [t["data"]["confidence"] for t in delivered] == [pytest.approx(0.9 - i * 0.01) for i in range(9, -1, -1)]
    assert backend.next_task(project.id)["data"]["ticket_id"] == "t9"


def test_reviewers_get_first_what_the_strategy_ranks_first_not_the_least_confident(
        tmp_path: Path, settings: LabelStudioSettings, policy: Policy) -> None:
    backend = InMemoryReviewBackend()
    svc = _service(tmp_path, settings, policy, "severity_weighted", backend)
    try:
        critical = {"none": 0.0, "low": 0.0, "medium": 0.0, "high": 0.2, "critical": 0.8}
        # "unsure" has the lowest model confidence, "severe" may be critical: severity_weighted ranks it first.
        svc.enqueue([ticket("unsure", 0.5, confidence=0.2), ticket("severe", 0.6, severity=critical,
                                                                    confidence=0.9),
                     ticket("sure", 0.99, confidence=0.95)], "m", "v1")
        ranked = [i.ticket_id for i in svc.outbox.claim(10, 60)]
        svc.outbox.release(ranked, "test: give back")
        svc.sync_now()
        project = next(iter(backend.projects.values()))
        served = []
        for _ in range(3):
            task = backend.next_task(project.id)
            served.append(task["data"]["ticket_id"])
            backend.annotate(task["id"], "r1", [])
        assert ranked[0] == "severe"
        assert served == ranked
    finally:
        svc.outbox.close()


def test_severity_weighted_puts_possibly_severe_tickets_first(
        tmp_path: Path, settings: LabelStudioSettings, policy: Policy) -> None:
    svc = _service(tmp_path, settings, policy, "severity_weighted")
    try:
        critical = {"none": 0.0, "low": 0.0, "medium": 0.0, "high": 0.2, "critical": 0.8}
        svc.enqueue([ticket("mild", 0.5), ticket("severe", 0.5, severity=critical), ticket("sure", 0.99)],
                    "m", "v1")
        assert [i.ticket_id for i in svc.outbox.claim(10, 60)] == ["severe", "mild", "sure"]
    finally:
        svc.outbox.close()


def test_every_non_diverse_strategy_scores_every_review_item(
        tmp_path: Path, settings: LabelStudioSettings, policy: Policy) -> None:
    for name in STRATEGIES:
        svc = _service(tmp_path, settings, policy, name)
        try:
            svc.enqueue([ticket("a", 0.9), ticket("b", 0.5), ticket("c", 0.7)], "m", "v1")
            claimed = svc.outbox.claim(10, 60)
            assert sorted(i.ticket_id for i in claimed) == ["a", "b", "c"], name
            useful = [i.usefulness for i in claimed]
            assert all(u is not None and 0.0 <= u <= 1.0 for u in useful), (name, useful)
            assert useful == sorted(useful, reverse=True), name  # type: ignore[type-var]
            if name != "random":
                assert claimed[0].ticket_id == "b", name
        finally:
            svc.outbox.close()


def test_unknown_strategy_fails_at_construction_naming_the_known_ones(
        tmp_path: Path, settings: LabelStudioSettings, policy: Policy) -> None:
    with pytest.raises(ReviewError) as err:
        _service(tmp_path, settings, policy, "most_confusing")
    message = str(err.value)
    assert "'most_confusing'" in message
    assert all(name in message for name in STRATEGIES)


def test_diverse_strategy_falls_back_to_its_base_with_a_warning(
        tmp_path: Path, settings: LabelStudioSettings, policy: Policy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="triage.review.service"):
        svc = _service(tmp_path, settings, policy, "diverse_entropy")
    try:
        assert isinstance(svc.strategy, Entropy)
        assert any("diverse_entropy" in r.getMessage() and "embeddings" in r.getMessage() for r in caplog.records)
        svc.enqueue([ticket("sure", 0.99), ticket("unsure", 0.5)], "m", "v1")
        assert [i.ticket_id for i in svc.outbox.claim(10, 60)] == ["unsure", "sure"]
    finally:
        svc.outbox.close()


# The queue table as the first release created it, before the usefulness column.
OLD_QUEUE = """
CREATE TABLE queue (
    ticket_id TEXT PRIMARY KEY, payload TEXT NOT NULL, model_version TEXT NOT NULL, priority REAL NOT NULL,
    score REAL NOT NULL, state TEXT NOT NULL CHECK (state IN ('waiting', 'sent', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0, claimed_until REAL, last_error TEXT, enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL, sent_at REAL, task_id INTEGER, prediction_dirty INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_waiting ON queue (state, enqueued_at);
INSERT INTO queue (ticket_id, payload, model_version, priority, score, state, enqueued_at, updated_at)
VALUES ('legacy', '{}', 'v0', 0.5, 0.5, 'waiting', 1.0, 1.0);
"""


def _columns(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute("PRAGMA table_info(queue)")]
    finally:
        db.close()


def test_an_old_outbox_file_gets_the_usefulness_column_and_keeps_its_items(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_QUEUE)
    db.close()
    assert "usefulness" not in _columns(path)

    outbox = Outbox(path)
    try:
        assert _columns(path).count("usefulness") == 1
        assert outbox.counts()["waiting"] == 1
        new = QueueItem("scored", "{}", "v1", 0.5, 0.5)
        outbox.enqueue([replace(new, usefulness=0.2), replace(new, ticket_id="scored-more", usefulness=0.9)])
        claimed = outbox.claim(10, 60)
        # Scored items first, most useful first; the unscored legacy item (NULL) still delivered, last.
        assert [(i.ticket_id, i.usefulness) for i in claimed] == [("scored-more", 0.9), ("scored", 0.2),
                                                                   ("legacy", None)]
    finally:
        outbox.close()
    reopened = Outbox(path)  # the migration runs again on every open and is a no-op the second time
    try:
        assert _columns(path).count("usefulness") == 1
        assert reopened.queued("scored-more") == QueueItem("scored-more", "{}", "v1", 0.5, 0.5, 1, None, 0.9)
    finally:
        reopened.close()
