"""The decision log's writer process: the same rows as the thread writes, and no loss when the process dies."""

from __future__ import annotations

import gc
import os
import signal
import time
import weakref
from pathlib import Path

import psutil
import pytest

from tests.unit.review.conftest import scored
from triage.decisions.recorder import Recorder
from triage.decisions.store import DecisionStore
from triage.decisions.writer import WriterProcess, WriterUnavailable
from triage.settings import DecisionsSettings

ITEMS = [("P-1", 0.4, "win a prize at bit.ly/x"), ("P-2", 0.95, "héllo ✓ 你好"), ("P-3", 0.2, "これはスパムです")]


def _store(tmp_path: Path, name: str) -> DecisionStore:
    store = DecisionStore(f"sqlite:///{tmp_path / name}")
    store.migrate()
    return store


def _record(store: DecisionStore, writer: str) -> Recorder:
    rec = Recorder(store, DecisionsSettings(writer=writer, store_text=True, audit_rate=1.0,  # type: ignore[arg-type]
                                            flush_interval_s=60.0), "2026.11.1")
    rec.start()
    rec.record([scored(t, p, text=x, route="auto" if p > 0.9 else "review") for t, p, x in ITEMS], "triage", "3",
               "key-1")
    return rec


def _rows(store: DecisionStore) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in store.decisions_between(None, None, None)]


def test_process_writes_exactly_what_the_thread_writes(tmp_path: Path) -> None:
    by_process, by_thread = _store(tmp_path, "p.db"), _store(tmp_path, "t.db")
    rec_p, rec_t = _record(by_process, "process"), _record(by_thread, "thread")
    assert rec_p._writer is not None and rec_p._writer.alive and rec_t._writer is None
    assert rec_p.flush() == 3 and rec_t.flush() == 3
    rec_p.stop()
    rec_t.stop()
    rows_p, rows_t = _rows(by_process), _rows(by_thread)
    for r in rows_p + rows_t:
        r.pop("decided_at")
    assert rows_p == rows_t and len(rows_p) == 3
    assert {r["ticket_id"]: r["audit_sample"] for r in rows_p} == {"P-1": False, "P-2": True, "P-3": False}
    assert {r["ticket_id"]: r["script"] for r in rows_p} == {"P-1": "latin", "P-2": "latin", "P-3": "kana"}


def test_stop_ends_the_writer_process(tmp_path: Path) -> None:
    rec = _record(_store(tmp_path, "d.db"), "process")
    writer = rec._writer
    assert writer is not None
    rec.stop()
    assert not writer.alive and rec.written == 3


def test_a_killed_writer_process_loses_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path, "d.db")
    rec = _record(store, "process")
    assert rec.flush() == 3
    writer = rec._writer
    assert writer is not None and writer._proc is not None and writer._proc.pid is not None
    os.kill(writer._proc.pid, signal.SIGKILL)
    writer._proc.join(10)
    rec.record([scored(f"K-{i}", 0.4) for i in range(5)], "triage", "3")
    assert rec.flush() == 5  # the thread took over
    assert rec._writer is None and store.count() == 8 and rec.dropped == 0
    rec.stop()


def test_write_errors_come_back_from_the_process(tmp_path: Path) -> None:
    store = _store(tmp_path, "d.db")
    writer = WriterProcess(store.url, "p", False)
    with pytest.raises(WriterUnavailable, match="not started"):
        writer.write([])
    writer.start()
    try:
        meta = ("m", "1", None, None)  # decided_at None violates the column's NOT NULL
        flat = ("E-1", "x", None, "spam", "low", 0.5, "review", 0.5, {}, {}, (), (), False)
        with pytest.raises(RuntimeError, match="IntegrityError"):
            writer.write([(meta, [flat])])  # type: ignore[list-item]
        assert writer.alive  # one bad batch does not end the process
    finally:
        writer.stop()
    assert not writer.alive


def test_writer_process_runs_at_lower_priority(tmp_path: Path) -> None:
    writer = WriterProcess(_store(tmp_path, "d.db").url, "p", False, nice=7)
    writer.start()
    try:
        assert writer._proc is not None and writer._proc.pid is not None
        child = psutil.Process(writer._proc.pid)
        for _ in range(100):  # the child lowers its priority once it has started
            if child.nice() == psutil.Process().nice() + 7:
                break
            time.sleep(0.05)
        assert child.nice() == psutil.Process().nice() + 7
    finally:
        writer.stop()


def test_queued_decisions_hold_none_of_the_scored_tickets_except_the_audit_sample(tmp_path: Path) -> None:
    """Held until the flush, the scored tickets cost every garbage collection under load a walk over them."""
    store = _store(tmp_path, "q.db")
    rec = Recorder(store, DecisionsSettings(writer="thread", audit_rate=1.0, flush_interval_s=60.0), "p")
    items = [scored(t, p, text=x, route="auto" if p > 0.9 else "review") for t, p, x in ITEMS]
    refs = {it.ticket.id: weakref.ref(it) for it in items}
    rec.record(items, "triage", "3")
    del items
    gc.collect()
    # Only P-2, auto-routed and in the audit sample (rate 1.0), stays alive for the review queue.
    assert {t: ref() is not None for t, ref in refs.items()} == {"P-1": False, "P-2": True, "P-3": False}
    assert rec.flush() == 3
    assert {r["ticket_id"] for r in _rows(store)} == {"P-1", "P-2", "P-3"}
