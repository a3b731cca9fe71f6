"""Ticket text kept only while needed: purged once labelled or expired; `triage review purge`; owner-only files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import PRIVATE_MARKERS
from tests.unit.review.conftest import scored
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.outbox import Outbox
from triage.review.retention import PURGED, purge
from triage.review.service import ReviewService
from triage.settings import LabelStudioSettings
from triage.taxonomy import Policy

SECRET_TEXT = PRIVATE_MARKERS[1]


def _service(tmp_path: Path, policy: Policy) -> tuple[ReviewService, InMemoryReviewBackend]:
    backend = InMemoryReviewBackend()
    settings = LabelStudioSettings(pull_interval_s=0, webhook_url="http://127.0.0.1:1/v1/review/webhook")
    return ReviewService(Outbox(tmp_path / "review.db"), backend, policy, settings), backend


def test_text_removed_once_delivered_and_labelled(tmp_path: Path, policy: Policy) -> None:
    svc, backend = _service(tmp_path, policy)
    svc.enqueue([scored("a", 0.4, text=f"{SECRET_TEXT} a"), scored("b", 0.4, text=f"{SECRET_TEXT} b"),
                 scored("c", 0.4, text=f"{SECRET_TEXT} c")], "m", "v1")
    assert purge(svc.outbox, retention_days=30).labelled == 0  # waiting: never purged
    svc.sync_now()
    pid = next(iter(backend.projects))
    task_a = next(t for t, v in backend.projects[pid].tasks.items() if v["data"]["ticket_id"] == "a")
    svc.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(task_a, "3",
                                                                             result_for(["spam"], "low")), pid))
    report = purge(svc.outbox, retention_days=30)
    assert (report.labelled, report.expired) == (1, 0)
    item = svc.outbox.queued("a")
    assert item is not None and SECRET_TEXT not in item.payload and PURGED in item.payload
    assert json.loads(item.payload)["data"]["metadata"] == {}
    assert SECRET_TEXT in svc.outbox.queued("b").payload  # type: ignore[union-attr]  # sent, not labelled, recent
    later = purge(svc.outbox, retention_days=1, now=time.time() + 2 * 86400)
    assert (later.labelled, later.expired, later.deleted) == (0, 3, 3)  # past retention: the rows go
    assert purge(svc.outbox, retention_days=1, now=time.time() + 3 * 86400) == type(report)(0, 0, 0)  # idempotent
    # What remains is the labelled annotation's own text (the training example), nothing in the queue.
    assert svc.outbox._conn().execute("SELECT COUNT(*) FROM queue").fetchone()[0] == 0
    assert [SECRET_TEXT in a.text for a in svc.outbox.annotations()] == [True]
    svc.outbox.close()


def test_review_purge_command(tmp_path: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = _service(tmp_path, policy)
    svc.enqueue([scored("a", 0.4, text=SECRET_TEXT)], "m", "v1")
    svc.sync_now()
    svc.outbox.close()
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "true")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__OUTBOX_PATH", str(tmp_path / "review.db"))
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    from triage.settings import get_settings
    from triage_cli.main import app

    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["review", "purge", "--retention-days", "0"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output.strip().splitlines()[-1]) == {"labelled": 0, "expired": 0, "deleted": 0,
                                                                   "retention_days": 0.0}
        time.sleep(1.0)
        out = CliRunner().invoke(app, ["review", "purge", "--retention-days", "0.00001", "--vacuum"])
        assert json.loads(out.output.strip().splitlines()[-1])["expired"] == 1
    finally:
        get_settings.cache_clear()
    box = Outbox(tmp_path / "review.db")
    assert box.queued("a") is None  # delivered longer ago than the retention period: deleted
    box.close()
