"""Annotations back: webhook events and the pull are recorded; updates replace, deletions retract."""

from __future__ import annotations

import json

import pytest

from tests.unit.review.conftest import scored
from triage.errors import WebhookPayloadError
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.service import ReviewService


def _pushed(service: ReviewService, backend: InMemoryReviewBackend, n: int = 3) -> tuple[int, list[int]]:
    service.enqueue([scored(f"t{i}", 0.3 + i / 10) for i in range(n)], "baseline", "v1")
    service.sync_now()
    pid = next(iter(backend.projects))
    return pid, sorted(backend.projects[pid].tasks)


def test_uncertain_first(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, _ = _pushed(service, backend)
    assert backend.next_task(pid)["data"]["ticket_id"] == "t0"


def test_webhook_create_update_delete(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    ann = backend.annotate(tasks[0], "7", result_for(["fraud"], "medium", "asks for card number"))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid)) == "created"
    (ex,) = service.examples()
    assert ex.labels["fraud"] == 1 and ex.labels["spam"] == 0 and sum(ex.labels.values()) == 1
    assert ex.severity == "medium"
    assert ex.meta["ticket_id"] == "t0" and ex.meta["annotators"] == "7"
    assert ex.meta["model_version"] == "v1" and ex.meta["policy_version"] == service.policy.version
    assert json.loads(ex.meta["by_annotator"])["7"]["rationale"] == "asks for card number"

    ann2 = backend.annotate(tasks[0], "7", result_for(["spam"], "low"), annotation_id=ann.annotation_id)
    assert service.record_webhook(webhook_payload("ANNOTATION_UPDATED", ann2, pid)) == "updated"
    (ex,) = service.examples()
    assert ex.labels["spam"] == 1 and ex.labels["fraud"] == 0 and ex.severity == "low"

    # A late, older copy of the event never undoes the update.
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid)) == "kept"

    assert service.record_webhook(webhook_payload("ANNOTATIONS_DELETED", ann2, pid)) == "deleted 1"
    assert service.examples() == []
    assert service.status()["annotations_deleted"] == 1
    # ... and a replay of the creation cannot bring it back.
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann2, pid)) == "kept"
    assert service.examples() == []


def test_none_means_every_category_is_negative(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    ann = backend.annotate(tasks[1], "7", result_for(["none"], "none"))
    service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid))
    (ex,) = service.examples()
    assert set(ex.labels) == set(service.policy.category_names) and not any(ex.labels.values())


def test_events_of_another_project_are_ignored(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    ann = backend.annotate(tasks[0], "7", result_for(["spam"], "low"))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid + 100)).startswith("ignored")
    assert service.examples() == []


@pytest.mark.parametrize("payload, message", [
    ({}, "missing 'action'"),
    ({"action": "ANNOTATION_CREATED", "annotation": {"id": "x"}}, "integer 'id'"),
    ({"action": "ANNOTATION_CREATED", "annotation": {"id": 1, "task": 5}}, "no 'task' with 'data'"),
    ({"action": "ANNOTATIONS_DELETED", "annotations": "1"}, "list of objects"),
])
def test_bad_payloads_say_what_is_wrong(service: ReviewService, payload: dict, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        service.record_webhook(payload)


def test_other_actions_are_acknowledged_not_recorded(service: ReviewService) -> None:
    assert service.record_webhook({"action": "PROJECT_UPDATED", "project": {"id": 1}}).startswith("ignored")


def test_pull_is_a_safety_net_for_missed_webhooks(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    _, tasks = _pushed(service, backend)
    a1 = backend.annotate(tasks[0], "7", result_for(["spam"], "low"))
    backend.annotate(tasks[1], "7", result_for(["fraud"], "high"))
    report = service.pull()
    assert (report.seen, report.created, report.updated, report.deleted) == (2, 2, 0, 0)
    backend.annotate(tasks[0], "7", result_for(["hate"], "high"), annotation_id=a1.annotation_id)
    backend.delete(next(a for a in backend.annotations if a != a1.annotation_id))
    report = service.pull()
    assert (report.updated, report.deleted) == (1, 1)
    (ex,) = service.examples()
    assert ex.labels["hate"] == 1 and ex.meta["ticket_id"] == "t0"
    again = service.pull()  # idempotent
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)


def test_disagreement_goes_to_adjudication_and_is_exported_only_once_settled(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    for who, cats, sev in (("1", ["fraud"], "medium"), ("2", ["fraud", "spam"], "medium"), ("3", ["spam"], "low")):
        service.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(tasks[0], who,
                                                                                     result_for(cats, sev)), pid))
    assert service.examples() == []  # reviewers disagree: no label until someone adjudicates
    assert service.status()["adjudication_waiting"] == 1
    ag = service.agreement()
    assert ag.tasks == 1 and ag.annotations == 3
    assert ag.category_pairwise["fraud"] == pytest.approx(1 / 3)
    assert ag.category_pairwise["hate"] == 1.0

    report = service.sync_now()
    assert report.sent_to_adjudication == 1
    assert service.sync_now().sent_to_adjudication == 0  # once per task
    (adj,) = [p for p in backend.projects.values() if p.title == service.adjudication_title]
    assert adj.options["maximum_annotations"] == 1
    (task,) = adj.tasks.values()
    assert task["data"]["adjudicates_task"] == tasks[0] and task["data"]["ticket_id"] == "t0"
    for answer in ("reviewer 1: fraud / medium", "reviewer 2: fraud, spam / medium", "reviewer 3: spam / low"):
        assert answer in task["data"]["answers"]

    final = backend.annotate(task["id"], "9", result_for(["fraud"], "high"))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", final, adj.id)) == "created"
    (ex,) = service.examples()
    assert ex.meta["ticket_id"] == "t0" and ex.meta["adjudicated_by"] == "9"
    assert ex.labels["fraud"] == 1 and ex.labels["spam"] == 0 and ex.severity == "high"
    assert ex.meta["annotators"] == "1,2,3"  # the reviewers' own answers stay in meta
    assert set(json.loads(ex.meta["by_annotator"])) == {"1", "2", "3"}
    assert service.agreement().annotations == 3  # the adjudicator is not a reviewer


def test_reviewers_who_agree_need_no_adjudication(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    for who in ("1", "2"):
        service.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(
            tasks[0], who, result_for(["spam"], "low")), pid))
    (ex,) = service.examples()
    assert ex.labels["spam"] == 1 and ex.meta["reviewer_agreement"] == "1.000" and ex.meta["adjudicated_by"] == ""
    assert service.status()["adjudication_waiting"] == 0


def test_an_annotation_the_policy_cannot_read_is_left_out_alone(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    pid, tasks = _pushed(service, backend)
    good = backend.annotate(tasks[0], "7", result_for(["spam"], "low"))
    bad = backend.annotate(tasks[1], "7", result_for(["extremism"], "low"))  # a category the policy dropped
    for ann in (good, bad):
        service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid))
    assert service.status()["annotations"] == 2  # both recorded as they came
    (ex,) = service.examples()  # only the readable one becomes training data
    assert ex.meta["ticket_id"] == "t0"
