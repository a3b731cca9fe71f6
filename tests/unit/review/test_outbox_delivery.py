"""Delivery through the outbox: each ticket becomes exactly one task, whatever Label Studio does."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.unit.review.conftest import scored
from triage.errors import ReviewBackendUnavailable
from triage.review.memory import InMemoryReviewBackend
from triage.review.service import ReviewService, queue_scores


def _tasks(backend: InMemoryReviewBackend) -> list[dict]:
    return [t for p in backend.projects.values() for t in p.tasks.values()]


def queue_score(usefulness: float) -> float:
    """The Label Studio score of one usefulness."""
    return float(queue_scores(np.array([usefulness]))[0])


def test_enqueue_keeps_only_review_items_and_never_calls_label_studio(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    new = service.enqueue([scored("a", 0.6), scored("b", 0.9, route="auto"), scored("c", 0.3)], "m", "v1").new
    assert new == 2
    assert backend.calls == []
    assert service.status()["waiting"] == 2


def test_push_carries_text_metadata_priority_and_prediction(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("a", 0.61)], "baseline", "v7")
    report = service.sync_now()
    assert report.delivered == 1
    (task,) = _tasks(backend)
    assert task["data"]["ticket_id"] == "a"
    assert task["data"]["text"] == "text of a"
    assert task["data"]["priority"] == 0.4
    assert task["data"]["metadata"] == {"channel": "sms"}
    (pred,) = task["predictions"]
    # The score Label Studio serves by is the selection strategy's usefulness, mapped so the most useful is lowest.
    assert pred.score == pytest.approx(queue_score(task["data"]["usefulness"])) and pred.model_version == "v7"
    assert task["data"]["confidence"] == 0.61
    assert pred.result[0]["value"]["choices"] == ["spam", "fraud"]  # top category + the other over threshold
    project = next(iter(backend.projects.values()))
    assert project.model_version == "v7"
    assert project.webhooks == {service.webhook_url: {"X-Triage-Webhook-Secret": "dev-secret"}}


def test_rescoring_never_makes_a_second_task(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("a", 0.6)], "m", "v1")
    service.enqueue([scored("a", 0.5)], "m", "v1")  # still waiting: newer scores replace
    service.sync_now()
    service.enqueue([scored("a", 0.4)], "m", "v1")  # already sent, same model: nothing to do
    assert service.enqueue([scored("a", 0.4)], "m", "v1").new == 0
    service.sync_now()
    tasks = _tasks(backend)
    assert len(tasks) == 1
    assert [p.score for p in tasks[0]["predictions"]] == [pytest.approx(queue_score(0.9))]  # fraud 0.55
    assert tasks[0]["data"]["confidence"] == 0.5  # the newer scores


def test_a_new_model_version_adds_a_prediction_to_the_existing_task(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("a", 0.6)], "m", "v1")
    service.sync_now()
    service.enqueue([scored("a", 0.3)], "m", "v2")
    report = service.sync_now()
    assert report.predictions_updated == 1
    (task,) = _tasks(backend)
    assert [p.model_version for p in task["predictions"]] == ["v1", "v2"]
    assert task["predictions"][1].score == pytest.approx(queue_score(service.outbox.queued("a").usefulness))
    assert backend.calls.count("add_predictions") == 1
    assert next(iter(backend.projects.values())).model_version == "v2"


def test_outage_items_wait_then_arrive_exactly_once(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    backend.down = True
    service.enqueue([scored(f"t{i}", 0.5) for i in range(20)], "m", "v1")
    with pytest.raises(ReviewBackendUnavailable):
        service.sync_now()
    assert service.status()["waiting"] == 20
    backend.down = False
    report = service.sync_now()
    assert report.delivered == 20
    ids = [t["data"]["ticket_id"] for t in _tasks(backend)]
    assert sorted(ids) == sorted(f"t{i}" for i in range(20))
    assert service.status()["sent"] == 20 and service.status()["waiting"] == 0


def test_a_lost_response_does_not_duplicate(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored(f"t{i}", 0.5) for i in range(10)], "m", "v1")
    backend.lose_responses = 1  # first batch (7) is imported, but the answer never arrives
    with pytest.raises(ReviewBackendUnavailable):
        service.sync_now()
    report = service.sync_now()
    assert report.already_there == 7 and report.delivered == 3
    ids = [t["data"]["ticket_id"] for t in _tasks(backend)]
    assert len(ids) == len(set(ids)) == 10


def test_a_refused_task_does_not_block_the_others(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    backend.reject_text = "poison"
    service.enqueue([scored("ok1", 0.5), scored("bad", 0.5, text="poison pill"), scored("ok2", 0.5)], "m", "v1")
    report = service.sync_now()
    assert (report.delivered, report.rejected) == (2, 1)
    st = service.status()
    assert (st["sent"], st["rejected"], st["waiting"]) == (2, 1, 0)
    assert "poison" in (st["last_error"] or "") or st["rejected"] == 1


def test_background_sync_delivers_after_the_outage(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    backend.down = True
    service.start()
    started = time.perf_counter()
    service.enqueue([scored(f"t{i}", 0.5) for i in range(30)], "m", "v1")
    enqueue_s = time.perf_counter() - started
    time.sleep(0.2)
    assert service.status()["waiting"] == 30
    backend.down = False
    deadline = time.monotonic() + 5
    while service.status()["sent"] < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    service.stop()
    assert service.status()["sent"] == 30
    assert len(_tasks(backend)) == 30
    assert enqueue_s < 1.0  # a local SQLite write, never a network call


def test_two_outboxes_on_one_file_never_send_twice(tmp_path, backend, policy, settings) -> None:
    from triage.review.outbox import Outbox

    a = ReviewService(Outbox(tmp_path / "q.db"), backend, policy, settings)
    b = ReviewService(Outbox(tmp_path / "q.db"), backend, policy, settings)
    a.enqueue([scored(f"t{i}", 0.5) for i in range(15)], "m", "v1")
    a.sync_now()
    b.sync_now()
    assert len(_tasks(backend)) == 15
