"""Outbox retention: done rows past the retention period are deleted (waiting ones never), labelled recent ones only
lose their text, late annotations of deleted tasks are still recorded, and the file stays bounded under churn."""

from __future__ import annotations

import json
import sqlite3
import types
from contextlib import closing
from pathlib import Path

import pytest

import triage.review.outbox as outbox_module
from tests.unit.review.conftest import scored
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.outbox import Outbox, QueueItem
from triage.review.retention import PURGED, purge
from triage.review.service import ReviewService

DAY = 86400.0


class Clock:
    """A settable time.time() for the outbox module (rows get their timestamps from it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(1_800_000_000.0)
    monkeypatch.setattr(outbox_module, "time", types.SimpleNamespace(time=c.time))
    return c


def _states(box: Outbox) -> dict[str, str]:
    return dict(box._conn().execute("SELECT ticket_id, state FROM queue").fetchall())


def _task_of(backend: InMemoryReviewBackend, ticket_id: str) -> tuple[int, int]:
    pid = next(iter(backend.projects))
    return pid, next(t for t, v in backend.projects[pid].tasks.items() if v["data"]["ticket_id"] == ticket_id)


def test_expired_done_rows_deleted_waiting_kept_labelled_recent_redacted(
        service: ReviewService, backend: InMemoryReviewBackend, clock: Clock) -> None:
    service.enqueue([scored("old-sent", 0.4), scored("old-labelled", 0.4), scored("old-rejected", 0.4)], "m", "v1")
    service.sync_now()
    pid, task = _task_of(backend, "old-labelled")
    service.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(task, "3", result_for(["spam"],
                                                                                                      "low")), pid))
    service.outbox.set_meta("x", "y")  # unrelated rows stay
    clock.now += 1.0
    service.outbox.enqueue([QueueItem("old-rejected-2", "{}", "v1", 0.4, 0.4)])
    service.outbox.reject("old-rejected-2", "refused")
    t0 = clock.now
    clock.now += 11 * DAY
    service.enqueue([scored("recent", 0.4), scored("recent-labelled", 0.4)], "m", "v1")
    service.sync_now()
    pid, task = _task_of(backend, "recent-labelled")
    service.record_webhook(webhook_payload("ANNOTATION_CREATED", backend.annotate(task, "3", result_for(["spam"],
                                                                                                      "low")), pid))
    now = clock.now
    clock.now = t0  # queued long ago and never delivered (Label Studio down, say)
    service.enqueue([scored("waiting-old", 0.4)], "m", "v1")
    clock.now = now
    service.enqueue([scored("waiting-new", 0.4)], "m", "v1")

    report = purge(service.outbox, retention_days=10, now=clock.now)

    states = _states(service.outbox)
    assert "old-sent" not in states and "old-labelled" not in states and "old-rejected-2" not in states
    assert states == {"recent": "sent", "recent-labelled": "sent", "waiting-old": "waiting", "waiting-new": "waiting"}
    assert (report.labelled, report.expired, report.deleted) == (1, 4, 4)
    labelled = service.outbox.queued("recent-labelled")
    assert labelled is not None and PURGED in labelled.payload and "text of" not in labelled.payload
    assert "text of recent" in service.outbox.queued("recent").payload  # type: ignore[union-attr]
    assert service.outbox.get_meta("x") == "y"
    assert len(service.outbox.annotations()) == 2  # the labels (training data) are kept
    # Waiting rows are never deleted, however old.
    assert purge(service.outbox, retention_days=10, now=clock.now + 365 * DAY).expired == 2
    assert _states(service.outbox) == {"waiting-old": "waiting", "waiting-new": "waiting"}


def test_waiting_rows_never_deleted_even_when_label_studio_is_down_for_long(tmp_path: Path, clock: Clock) -> None:
    box = Outbox(tmp_path / "review.db")
    box.enqueue([QueueItem(f"t{i}", "{}", "v1", 0.4, 0.4) for i in range(5)])
    box.claim(2, lease_s=1.0)  # claimed, delivery failed: still waiting
    clock.now += 400 * DAY
    report = purge(box, retention_days=1, now=clock.now)
    assert (report.expired, report.deleted) == (0, 0) and box.counts()["waiting"] == 5
    box.close()


def test_retention_zero_deletes_nothing_by_age(service: ReviewService, clock: Clock) -> None:
    service.enqueue([scored("a", 0.4)], "m", "v1")
    service.sync_now()
    assert purge(service.outbox, retention_days=0, now=clock.now + 1000 * DAY).deleted == 0
    assert _states(service.outbox) == {"a": "sent"}


def test_late_annotation_of_a_deleted_task_is_still_recorded(
        service: ReviewService, backend: InMemoryReviewBackend, clock: Clock) -> None:
    service.enqueue([scored("gone", 0.4, text="the gone ticket's text")], "m", "v1")
    service.sync_now()
    clock.now += 31 * DAY
    assert purge(service.outbox, retention_days=30, now=clock.now).expired == 1
    assert service.outbox.queued("gone") is None
    pid, task = _task_of(backend, "gone")
    ann = backend.annotate(task, "7", result_for(["spam"], "low"))
    assert service.record_webhook(webhook_payload("ANNOTATION_CREATED", ann, pid)) == "created"
    (rec,) = service.outbox.annotations()
    assert (rec.task_id, rec.ticket_id, rec.text, rec.categories) == (task, "gone", "the gone ticket's text",
                                                                      ("spam",))
    # The periodic pull finds it too (unchanged), and the labelled example is exported.
    assert service.pull().created == 0
    assert [ex.meta.get("ticket_id") for ex in service.examples()] == ["gone"]


def test_deleted_row_paths_do_not_break_and_a_resent_ticket_is_queued_again(
        service: ReviewService, backend: InMemoryReviewBackend, clock: Clock) -> None:
    service.enqueue([scored("a", 0.4), scored("b", 0.4)], "m", "v1")
    service.sync_now()
    service.enqueue([scored("b", 0.4)], "m", "v2")  # re-scored after delivery: a prediction update is pending
    clock.now += 31 * DAY
    assert purge(service.outbox, retention_days=30, now=clock.now).expired == 2
    # Withdrawal, prediction updates and their lease paths find no row and do nothing.
    service.enqueue([scored("a", 0.9, route="auto")], "m", "v3")
    assert service.outbox.claim_prediction_updates(10, 1.0) == []
    service.outbox.clear_prediction_update("b", "{}")
    service.outbox.release_prediction_updates(["b"])
    assert service.sync_now().predictions_updated == 0
    # Past the retention period an id no longer de-duplicates: the ticket is queued, and delivered, again.
    assert service.enqueue([scored("a", 0.4)], "m", "v3").new == 1
    assert service.sync_now().delivered == 1
    pid = next(iter(backend.projects))
    assert sum(v["data"]["ticket_id"] == "a" for v in backend.projects[pid].tasks.values()) == 2


def test_id_conflict_records_expire_with_the_retention_period(tmp_path: Path, clock: Clock) -> None:
    box = Outbox(tmp_path / "review.db")
    box.enqueue([QueueItem("a", "{}", "v1", 0.4, 0.4, text_sha="x")])
    assert box.enqueue([QueueItem("a", "{}", "v1", 0.4, 0.4, text_sha="y")]).conflicts == ("a",)
    clock.now += 2 * DAY
    report = purge(box, retention_days=1, now=clock.now)
    assert (report.expired, report.deleted) == (0, 1) and box.conflicts() == []
    box.close()


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".lock"))


def test_file_size_stays_bounded_across_many_enqueue_send_purge_cycles(tmp_path: Path, clock: Clock) -> None:
    """A day of tickets per cycle, retention 3 days: the row count and the file level off after a few cycles."""
    box = Outbox(tmp_path / "review.db")
    text = "x" * 3000
    sizes, rows = [], []
    for cycle in range(40):
        items = [QueueItem(f"c{cycle}-{i}", json.dumps({"data": {"text": text}}), "v1", 0.4, 0.4)
                 for i in range(60)]
        box.enqueue(items)
        box.mark_sent({it.ticket_id: cycle * 100 + i for i, it in enumerate(box.claim(100, 30.0))})
        purge(box, retention_days=3, now=clock.now)
        box._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what SQLite's auto-checkpoint does over time
        sizes.append(_file_bytes(box.path))
        rows.append(box.counts()["sent"])
        clock.now += DAY
    assert max(rows) == 4 * 60 and rows[-1] == 4 * 60  # the last 3 days plus today: rate x retention
    assert max(sizes[10:]) <= 1.05 * sizes[9], sizes  # flat once the retention window is full
    assert sizes[-1] < 60 * 40 * 3000 / 4  # far below everything ever queued (7.2 MB)
    box.close()


def test_new_files_give_freed_pages_back(tmp_path: Path, clock: Clock) -> None:
    box = Outbox(tmp_path / "review.db")
    assert box._conn().execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    box.enqueue([QueueItem(f"t{i}", "y" * 4000, "v1", 0.4, 0.4) for i in range(500)])
    box.mark_sent({it.ticket_id: i for i, it in enumerate(box.claim(1000, 30.0))})
    pages = box._conn().execute("PRAGMA page_count").fetchone()[0]
    purge(box, retention_days=1, now=clock.now + 2 * DAY)
    assert box._conn().execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert box._conn().execute("PRAGMA page_count").fetchone()[0] < pages / 10
    box.close()


def test_vacuum_switches_an_older_file_to_giving_pages_back(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "review.db"
    with closing(sqlite3.connect(path)) as old:  # a file made before auto-vacuum: tables first
        old.executescript(outbox_module._SCHEMA)
    box = Outbox(path)
    assert box._conn().execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    box.enqueue([QueueItem(f"t{i}", "y" * 4000, "v1", 0.4, 0.4) for i in range(300)])
    box.mark_sent({it.ticket_id: i for i, it in enumerate(box.claim(1000, 30.0))})
    purge(box, retention_days=1, now=clock.now + 2 * DAY)
    assert box._conn().execute("PRAGMA freelist_count").fetchone()[0] > 250  # kept for reuse, the file as large
    box.vacuum()
    assert box._conn().execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert box._conn().execute("PRAGMA freelist_count").fetchone()[0] == 0
    box.enqueue([QueueItem("again", "y" * 4000, "v1", 0.4, 0.4)])
    box.mark_sent({it.ticket_id: 1 for it in box.claim(10, 30.0)})
    pages = box._conn().execute("PRAGMA page_count").fetchone()[0]
    purge(box, retention_days=1, now=clock.now + 4 * DAY)
    assert box._conn().execute("PRAGMA page_count").fetchone()[0] < pages  # from now on purges shrink the file
    assert box.counts()["sent"] == 0
    box.close()
