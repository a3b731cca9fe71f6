"""Expert review a T&S lead can trust: ticket identity, label validity, overlap, context, one writer per task."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.review.conftest import scored
from triage.data.imports import read_tickets_file
from triage.errors import DataError, ReviewBackendUnavailable
from triage.review.annotations import annotation_problem, prediction_result, result_for
from triage.review.labeling_config import CATEGORY, ESCALATE, SEVERITY, instructions, labeling_config
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import LabelStudioSettings
from triage.taxonomy import Policy

# ---------------------------------------------------------------------------------------------- identity


def test_a_file_without_ids_is_refused_naming_its_columns(tmp_path: Path) -> None:
    f = tmp_path / "tickets.csv"
    f.write_text("text,channel\nhello there,sms\nbuy now,email\n")
    with pytest.raises(DataError, match=r"no ticket id; the file has the columns 'text', 'channel'"):
        read_tickets_file(f, missing_ids="refuse")


def test_namespaced_ids_differ_between_files_and_are_stable(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("text\nfirst file one\nfirst file two\n")
    b.write_text("text\nsecond file one\nsecond file two\n")
    ids_a = [i for i, _, _ in read_tickets_file(a, missing_ids="namespace")]
    ids_b = [i for i, _, _ in read_tickets_file(b, missing_ids="namespace")]
    assert not set(ids_a) & set(ids_b)
    assert ids_a == [i for i, _, _ in read_tickets_file(a, missing_ids="namespace")]
    assert all(i.endswith((":1", ":2")) for i in ids_a + ids_b)


def test_same_id_with_another_text_is_a_conflict_never_merged(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    assert service.enqueue([scored("1", 0.5, text="first file, row one")], "m", "v1").new == 1
    service.sync_now()
    clash = service.enqueue([scored("1", 0.4, text="second file, row one"), scored("2", 0.4)], "m", "v2")
    assert clash.new == 1 and clash.conflicts == ("1",)
    report = service.sync_now()
    assert report.predictions_updated == 0  # the v2 prediction of the other text never reaches task 1
    (task, _) = sorted(next(iter(backend.projects.values())).tasks.values(), key=lambda t: t["id"])
    assert task["data"]["text"] == "first file, row one"
    assert [p.model_version for p in task["predictions"]] == ["v1"]
    (c,) = service.outbox.conflicts()
    assert c["ticket_id"] == "1" and c["text_sha"] != c["queued_text_sha"]
    assert service.status()["id_conflicts"] == 1
    # The same text again is the same ticket: a new model version updates its prediction as before.
    assert service.enqueue([scored("1", 0.3, text="first file, row one")], "m", "v3").conflicts == ()
    assert service.sync_now().predictions_updated == 1


def test_two_texts_under_one_id_in_one_batch_keep_the_first(service: ReviewService) -> None:
    result = service.enqueue([scored("x", 0.5, text="one"), scored("x", 0.5, text="two")], "m", "v1")
    assert (result.new, result.conflicts) == (1, ("x",))
    assert json.loads(service.outbox.queued("x").payload)["data"]["text"] == "one"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- validity


@pytest.mark.parametrize("cats, severity, reason", [
    ([], None, "no category chosen"),
    (["spam"], None, "no severity chosen"),
    (["spam"], "none", "spam chosen with severity none"),
    (["none"], "high", "no violation ('none') with severity high"),
    (["none", "hate"], "medium", "'none' chosen together with hate"),
    (["extremism"], "low", "unknown categories: extremism"),
])
def test_inconsistent_answers_have_a_reason(policy: Policy, cats: list[str], severity: str | None,
                                            reason: str) -> None:
    assert (annotation_problem(cats, severity, policy) or "").startswith(reason)


def test_consistent_answers_pass(policy: Policy) -> None:
    assert annotation_problem(["none"], "none", policy) is None
    assert annotation_problem(["spam", "fraud"], "medium", policy) is None


def test_a_rejected_annotation_is_recorded_with_its_reason_and_never_exported(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored(f"t{i}", 0.5) for i in range(3)], "m", "v1")
    service.sync_now()
    pid = next(iter(backend.projects))
    t0, t1, t2 = sorted(backend.projects[pid].tasks)
    empty = backend.annotate(t0, "7", [])
    odd = backend.annotate(t1, "7", result_for(["none"], "high"))
    good = backend.annotate(t2, "7", result_for(["spam"], "low"))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", empty, pid)) == \
        "created (rejected: no category chosen (choose the categories that apply, or none))"
    assert "rejected: no violation ('none') with severity high" in \
        service.record_webhook(webhook_payload("ANNOTATION_CREATED", odd, pid))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", good, pid)) == "created"
    assert [ex.meta["ticket_id"] for ex in service.examples()] == ["t2"]
    reasons = {a.annotation_id: a.rejected_reason for a in service.outbox.annotations()}
    assert reasons[empty.annotation_id] and reasons[odd.annotation_id] and reasons[good.annotation_id] is None
    assert service.status()["annotations_rejected"] == 2
    # Fixing the answer in Label Studio makes it a label.
    fixed = backend.annotate(t1, "7", result_for(["none"], "none"), annotation_id=odd.annotation_id)
    service.record_webhook(webhook_payload("ANNOTATION_UPDATED", fixed, pid))
    assert sorted(ex.meta["ticket_id"] for ex in service.examples()) == ["t1", "t2"]


def test_escalation_is_recorded_and_returned(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("t0", 0.5)], "m", "v1")
    service.sync_now()
    pid = next(iter(backend.projects))
    (task,) = backend.projects[pid].tasks
    result = [*result_for(["fraud"], "high"),
              {"from_name": ESCALATE, "to_name": "text", "type": "choices", "value": {"choices": [ESCALATE]}}]
    service.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(task, "7", result), pid))
    (rec,) = service.outbox.annotations()
    assert rec.escalate
    (ex,) = service.examples()
    assert ex.meta["escalated"] == "true"
    assert service.status()["escalated_tickets"] == 1


# ---------------------------------------------------------------------------------------------- the view


def test_the_config_requires_categories_and_severity_and_offers_escalate(policy: Policy) -> None:
    root = ET.fromstring(labeling_config(policy))
    controls = {c.get("name"): c for c in root.iter("Choices")}
    assert controls[CATEGORY].get("required") == "true" and controls[SEVERITY].get("required") == "true"
    assert [c.get("value") for c in controls[ESCALATE].iter("Choice")] == [ESCALATE]
    shown = {h.get("value") for h in root.iter("Header")}
    assert {"$model_view", "$model_context", "$reasons", "$metadata_text"} <= shown
    # Context is in Header tags, not object tags: a task imported with only a text stays valid.
    assert {t.get("value") for t in root.iter("Text") if (t.get("value") or "").startswith("$")} == {"$text"}


def test_instructions_carry_definitions_and_rubric(policy: Policy) -> None:
    html = instructions(policy)
    assert all(c.definition.split("(")[0].strip() in html for c in policy.categories)
    assert all(s.name in html for s in policy.severity)


def test_task_shows_the_model_view(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("a", 0.61)], "baseline", "v7")
    service.sync_now()
    (task,) = next(iter(backend.projects.values())).tasks.values()
    data = task["data"]
    assert data["model_view"].startswith("categories: spam 60%, fraud 55%")
    assert "severity: none 20%, low 50%" in data["model_view"]
    assert data["model_context"] == ("model baseline:v7 says spam, severity low, confidence 61%; priority 0.40; "
                                     f"policy {service.policy.version}")
    assert data["reasons"] == "unsure about spam" and data["metadata_text"] == "channel: sms"


# ---------------------------------------------------------------------------------------------- overlap


def test_policy_sets_reviewers_by_severity_and_category(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    low = scored("low", 0.5)
    high = replace(scored("high", 0.5), decision=replace(scored("high", 0.5).decision, severity="high"))
    child = scored("child", 0.5, category="child_safety")
    service.enqueue([low, high, child], "m", "v1")
    service.sync_now()
    project = next(iter(backend.projects.values()))
    assert project.options["maximum_annotations"] == 1  # the usual number; high-stakes tasks get their own
    assert project.options["show_instruction"] is True
    overlap = {t["data"]["ticket_id"]: t["overlap"] for t in project.tasks.values()}
    assert overlap == {"low": 1, "high": 2, "child": 2}


# ---------------------------------------------------------------------------------------------- one writer


def test_two_processes_on_one_outbox_attach_each_prediction_once(
        tmp_path: Path, backend: InMemoryReviewBackend, policy: Policy, settings: LabelStudioSettings) -> None:
    a = ReviewService(Outbox(tmp_path / "shared.db"), backend, policy, settings)
    b = ReviewService(Outbox(tmp_path / "shared.db"), backend, policy, settings)
    try:
        a.enqueue([scored(f"t{i}", 0.5) for i in range(20)], "m", "v1")
        a.sync_now()
        # The server (a) and `triage review push` (b) both learn of the new model version.
        a.enqueue([scored(f"t{i}", 0.4) for i in range(20)], "m", "v2")
        b.enqueue([scored(f"t{i}", 0.4) for i in range(20)], "m", "v2")
        claimed = b.outbox.claim_prediction_updates(100, 60)  # b is mid-send when a syncs
        assert len(claimed) == 20
        assert a.sync_now().predictions_updated == 0
        b.outbox.release_prediction_updates([c.ticket_id for c in claimed])
        assert b.sync_now().predictions_updated == 20
        assert a.sync_now().predictions_updated == 0
        for task in next(iter(backend.projects.values())).tasks.values():
            assert sorted(p.model_version for p in task["predictions"]) == ["v1", "v2"]
        # Bulk: 20 updates at batch size 7 are 3 requests, not 20.
        assert backend.calls.count("add_predictions") == 3
    finally:
        a.outbox.close()
        b.outbox.close()


def test_a_failed_bulk_update_is_retried_not_lost(service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("t0", 0.5)], "m", "v1")
    service.sync_now()
    service.enqueue([scored("t0", 0.5)], "m", "v2")
    backend.down = True
    with pytest.raises(ReviewBackendUnavailable):
        service.sync_now()
    backend.down = False
    assert service.sync_now().predictions_updated == 1
    (task,) = next(iter(backend.projects.values())).tasks.values()
    assert [p.model_version for p in task["predictions"]] == ["v1", "v2"]


def test_only_a_consistent_model_answer_is_pre_filled(policy: Policy) -> None:
    spam_low = scored("a", 0.5)  # spam, severity low: consistent
    none_low = scored("b", 0.5, category="none")  # "none" with severity low: the reviewer chooses the severity
    none_low = replace(none_low, scores=replace(none_low.scores, categories={"spam": 0.1, "fraud": 0.1}))
    assert {r["from_name"]: r["value"]["choices"] for r in prediction_result(spam_low, policy)} == \
        {"category": ["spam", "fraud"], "severity": ["low"]}
    assert {r["from_name"]: r["value"]["choices"] for r in prediction_result(none_low, policy)} == \
        {"category": ["none"]}


# ---------------------------------------------------------------------------------------------- model change


def test_tickets_the_new_model_auto_routes_leave_the_queue_or_are_served_last(
        service: ReviewService, backend: InMemoryReviewBackend) -> None:
    service.enqueue([scored("sent-a", 0.5), scored("sent-b", 0.5)], "m", "v1")
    service.sync_now()
    service.enqueue([scored("waiting", 0.5)], "m", "v1")
    # Model v2 routes "waiting" and "sent-a" automatically, "sent-b" still to review.
    service.enqueue([scored("waiting", 0.95, route="auto"), scored("sent-a", 0.95, route="auto"),
                     scored("sent-b", 0.4)], "m", "v2")
    assert service.outbox.queued("waiting") is None  # never sent: it simply leaves the queue
    report = service.sync_now()
    assert report.delivered == 0 and report.predictions_updated == 2
    project = next(iter(backend.projects.values()))
    assert project.model_version == "v2"
    by_ticket = {t["data"]["ticket_id"]: t for t in project.tasks.values()}
    assert set(by_ticket) == {"sent-a", "sent-b"}
    assert by_ticket["sent-a"]["predictions"][-1].score == 1.0
    assert backend.next_task(project.id)["data"]["ticket_id"] == "sent-b"  # the auto-routed one comes last
    assert service.status()["sent_now_auto_routed"] == 1


def test_the_policy_switch_keeps_them_when_off(tmp_path: Path, backend: InMemoryReviewBackend, policy: Policy,
                                              settings: LabelStudioSettings) -> None:
    keep = policy.model_copy(update={"review": policy.review.model_copy(update={"withdraw_auto_routed": False})})
    svc = ReviewService(Outbox(tmp_path / "keep.db"), backend, keep, settings)
    try:
        svc.enqueue([scored("waiting", 0.5)], "m", "v1")
        svc.enqueue([scored("waiting", 0.95, route="auto")], "m", "v2")
        assert svc.outbox.queued("waiting") is not None
    finally:
        svc.outbox.close()


def test_only_the_server_derives_a_webhook_from_its_port(tmp_path: Path) -> None:
    from triage.review.service import build_review_service
    from triage.settings import ServingSettings, Settings

    ls = LabelStudioSettings(enabled=True, outbox_path=tmp_path / "r.db")
    settings = Settings(home=tmp_path, labelstudio=ls, serving=ServingSettings(host="0.0.0.0", port=8210))
    server = build_review_service(settings, settings.load_policy())
    cli = build_review_service(settings, settings.load_policy(), serving=False)
    public = build_review_service(settings.model_copy(update={"labelstudio": ls.model_copy(
        update={"api_public_url": "https://triage.example.org/"})}), settings.load_policy(), serving=False)
    try:
        assert server is not None and server.webhook_url == "http://127.0.0.1:8210/v1/review/webhook"
        assert cli is not None and cli.webhook_url == ""  # `triage review push` never guesses a port
        assert public is not None and public.webhook_url == "https://triage.example.org/v1/review/webhook"
    finally:
        for s in (server, cli, public):
            if s is not None:
                s.outbox.close()
