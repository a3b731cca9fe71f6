"""The decision log's store and recorder: rows as recorded, joins of expert labels, purge, no loss at stop."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.review.conftest import scored
from triage.decisions.recorder import Recorder, in_audit_sample, key_id
from triage.decisions.store import DecisionStore, ExpertLabel, utcnow
from triage.errors import DecisionQueryError
from triage.settings import DecisionsSettings

T0 = datetime(2026, 11, 2, 9, 0, 0)


@pytest.fixture
def store(tmp_path: Path) -> DecisionStore:
    s = DecisionStore(f"sqlite:///{tmp_path / 'decisions.db'}")
    s.migrate()
    s.migrate()  # idempotent
    return s


def recorder(store: DecisionStore, **kw: object) -> Recorder:
    return Recorder(store, DecisionsSettings(**kw), "2026.11.1")  # type: ignore[arg-type]


def test_every_field_recorded_and_key_never_stored(store: DecisionStore) -> None:
    rec = recorder(store)
    rec.record([scored("T-1", 0.4, text="win a prize at bit.ly/x")], "triage", "3", key_id("s3cret"), T0)
    assert rec.flush() == 1
    (row,) = store.for_ticket("T-1")
    assert row["model_name"] == "triage" and row["model_version"] == "3" and row["policy_version"] == "2026.11.1"
    assert row["category"] == "spam" and row["severity"] == "low" and row["route"] == "review"
    assert row["category_scores"]["spam"] == 0.6 and row["severity_scores"]["low"] == 0.5
    assert row["reasons"] == ["unsure about spam"] and row["prediction_set"] == []
    assert row["api_key_id"] == key_id("s3cret") and "s3cret" not in str(row)
    assert row["text"] is None and row["text_length"] == len("win a prize at bit.ly/x")
    assert len(row["text_sha256"]) == 64 and row["source"] == "sms" and row["script"] == "latin"
    assert row["decided_at"] == T0


def test_sqlite_fast_insert_stores_what_sqlalchemy_would(store: DecisionStore) -> None:
    # The SQLite hot path bypasses SQLAlchemy's type processing: both must read back identically.
    from triage.decisions.recorder import decision_row
    from triage.decisions.tables import decision_log

    items = [scored("T-a", 0.4, text="héllo ✓ 你好"), scored("T-b", 0.9, text="x")]
    rows = [decision_row(it, "triage", "3", "p1", None, when, True, 1.0)
            for it, when in zip(items, (datetime(2026, 1, 1, 12, 0, 0), T0), strict=True)]
    store.insert_decisions(rows)
    with store.engine.begin() as conn:
        conn.execute(decision_log.insert(), [{**r, "ticket_id": r["ticket_id"] + "-core"} for r in rows])
    for r in rows:
        (fast,) = store.for_ticket(r["ticket_id"])
        (core,) = store.for_ticket(r["ticket_id"] + "-core")
        assert {k: v for k, v in fast.items() if k not in ("id", "ticket_id")} == \
            {k: v for k, v in core.items() if k not in ("id", "ticket_id")}
        assert fast["decided_at"] == r["decided_at"] and fast["text"] == r["text"]
        assert fast["category_scores"] == r["category_scores"] and fast["audit_sample"] is r["audit_sample"]


def test_text_stored_only_when_turned_on_and_purge_removes_only_old_texts(store: DecisionStore) -> None:
    rec = recorder(store, store_text=True, retention_days=7)
    rec.record([scored("old", 0.4, text="old text")], "triage", "1", None, T0)
    rec.record([scored("new", 0.4, text="new text")], "triage", "1", None, T0 + timedelta(days=10))
    rec.flush()
    before = {r["ticket_id"]: r for r in store.decisions_between(None, None)}
    assert store.purge_texts(timedelta(days=7), now=T0 + timedelta(days=12)) == 1
    assert store.for_ticket("old")[0]["text"] is None
    assert store.for_ticket("new")[0]["text"] == "new text"
    after = {r["ticket_id"]: r for r in store.decisions_between(None, None)}
    assert after == before  # nothing but the text changed
    assert store.purge_texts(timedelta(days=7), now=T0 + timedelta(days=12)) == 0


def test_stop_writes_everything_queued(store: DecisionStore) -> None:
    rec = recorder(store, flush_interval_s=60.0, batch_size=7)
    rec.start()
    for i in range(50):
        rec.record([scored(f"T-{i}-{j}", 0.4) for j in range(3)], "triage", "1")
    rec.stop()
    assert store.count() == 150 and rec.written == 150 and rec.dropped == 0


def test_full_queue_drops_and_counts_instead_of_blocking(store: DecisionStore) -> None:
    rec = recorder(store, queue_max=5)
    rec.record([scored(f"a{i}", 0.4) for i in range(4)], "triage", "1")
    rec.record([scored(f"b{i}", 0.4) for i in range(4)], "triage", "1")
    assert rec.dropped == 4
    assert rec.flush() == 4


def test_label_joined_to_the_decision_it_judged(store: DecisionStore) -> None:
    rec = recorder(store)
    rec.record([scored("T-9", 0.4)], "triage", "1", None, T0)
    rec.record([scored("T-9", 0.4, category="fraud")], "triage", "2", None, T0 + timedelta(days=3))
    rec.flush()
    store.record_label(ExpertLabel(1, "T-9", "ann", ("spam",), "low", T0 + timedelta(hours=5), "webhook"))
    newest, oldest = store.for_ticket("T-9")
    assert newest["category"] == "fraud" and newest["labels"] == []
    (lab,) = oldest["labels"]
    assert lab["category_correct"] is True and lab["severity_correct"] is True
    assert lab["wait_seconds"] == 5 * 3600
    # An update from the expert replaces the verdict; a deletion hides it.
    store.record_label(ExpertLabel(1, "T-9", "ann", ("hate",), "high", T0 + timedelta(hours=5), "webhook"))
    (lab,) = store.for_ticket("T-9")[1]["labels"]
    assert lab["category_correct"] is False and lab["severity_correct"] is False
    assert store.retract_labels([1]) == 1
    assert store.for_ticket("T-9")[1]["labels"] == []


def test_label_before_its_decision_is_joined_later(store: DecisionStore) -> None:
    store.record_label(ExpertLabel(2, "T-5", "ann", (), "none", T0 + timedelta(hours=1), "sync"))
    rec = recorder(store)
    rec.record([scored("T-5", 0.4, category="none")], "triage", "1", None, T0)
    rec.flush()
    assert store.join_pending_labels() == 1
    (lab,) = store.for_ticket("T-5")[0]["labels"]
    assert lab["category_correct"] is True and lab["wait_seconds"] == 3600


def test_paging_newest_first_with_filters(store: DecisionStore) -> None:
    rec = recorder(store)
    for i in range(25):
        rec.record([scored(f"T-{i:02d}", 0.4, route="auto" if i % 2 else "review")], "triage", "1", None,
                   T0 + timedelta(hours=i))
    rec.flush()
    seen, cursor = [], None
    while True:
        page = store.page(route="review", limit=4, cursor=cursor)
        seen += [r["ticket_id"] for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"T-{i:02d}" for i in range(24, -1, -2)]
    page = store.page(since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=6), limit=10)
    assert [r["ticket_id"] for r in page.items] == ["T-05", "T-04", "T-03"] and page.next_cursor is None
    with pytest.raises(DecisionQueryError, match="limit must be between 1 and 1000"):
        store.page(limit=0)
    with pytest.raises(DecisionQueryError, match="must be before until"):
        store.page(since=T0, until=T0)
    with pytest.raises(DecisionQueryError, match="cursor"):
        store.page(cursor="not-a-cursor")


def test_helpers() -> None:
    share = sum(in_audit_sample(f"T-{i}", 0.1) for i in range(5000)) / 5000
    assert 0.08 < share < 0.12 and not in_audit_sample("T-1", 0.0)
    assert key_id("team-key-1") == key_id("team-key-1") != key_id("team-key-2")
    assert "team" not in key_id("team-key-1")[4:]


def test_audit_sample_of_auto_decisions_goes_to_review(store: DecisionStore) -> None:
    sent: list[tuple[list[str], str, str]] = []
    rec = Recorder(store, DecisionsSettings(audit_rate=1.0), "p",
                   audit_sink=lambda items, name, version: sent.append(([i.ticket.id for i in items], name, version))
                   or len(items))
    rec.record([scored("A-1", 0.9, route="auto"), scored("R-1", 0.3), scored("A-2", 0.9, route="auto")], "m", "4")
    rec.flush()
    assert sent == [(["A-1", "A-2"], "m", "4")]
    flags = {r["ticket_id"]: r["audit_sample"] for r in store.decisions_between(None, None)}
    assert flags == {"A-1": True, "R-1": False, "A-2": True}


def test_scheduled_purge_runs_in_the_writer(store: DecisionStore) -> None:
    rec = recorder(store, store_text=True, retention_days=1, purge_interval_s=0.05, flush_interval_s=0.05)
    rec.record([scored("old", 0.4)], "m", "1", None, utcnow() - timedelta(days=3))
    rec.record([scored("new", 0.4)], "m", "1")
    rec.start()
    try:
        for _ in range(100):
            if store.count() == 2 and store.for_ticket("old")[0]["text"] is None:
                break
            time.sleep(0.05)
    finally:
        rec.stop()
    assert store.for_ticket("old")[0]["text"] is None and store.for_ticket("new")[0]["text"] == "text of new"


def _migrate(url: str) -> str:
    DecisionStore(url).migrate()
    return "ok"


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    """`triage serve --workers N` starts N processes on one fresh database: every one starts, the schema once."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.map(_migrate, [url] * 4) == ["ok"] * 4
    store = DecisionStore(url)
    store.migrate()
    assert store.decisions_between(None, None) == []
