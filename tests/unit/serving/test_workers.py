"""Several server processes: one delivery leader, and an outbox that neither loses nor duplicates across them."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

from serving.workers import LeaderLock
from triage.review.outbox import Outbox, QueueItem

ROOT = Path(__file__).resolve().parents[3]


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = LeaderLock(tmp_path / "review.db.lock"), LeaderLock(tmp_path / "review.db.lock")
    assert first.try_acquire() and first.held
    assert not second.try_acquire() and not second.held
    assert first.try_acquire()  # idempotent for the holder
    first.release()
    assert second.try_acquire()
    second.release()


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "review.db.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from serving.workers import LeaderLock; "
         f"lock = LeaderLock({str(path)!r}); assert lock.try_acquire(); print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not LeaderLock(path).try_acquire()
    finally:
        holder.kill()
        holder.wait()
    assert LeaderLock(path).try_acquire()  # the dead process's lock is gone


def _enqueue(path: str, worker: int, n: int) -> None:
    outbox = Outbox(path)
    for i in range(n):
        # Every id is sent by two workers: the queue must still hold it once.
        tid = f"t{(worker // 2) * n + i}"
        outbox.enqueue([QueueItem(tid, "{}", "1", 0.5, 0.5)])
    outbox.close()


def _claim(path: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    outbox = Outbox(path)
    got: list[str] = []
    for _ in range(400):
        items = outbox.claim(7, lease_s=600)
        got.extend(i.ticket_id for i in items)
    out.put(got)
    outbox.close()


def test_outbox_across_processes_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    path = str(tmp_path / "review.db")
    Outbox(path).close()
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_enqueue, args=(path, w, 150)) for w in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    outbox = Outbox(path)
    assert outbox.counts()["waiting"] == 300
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    claimers = [ctx.Process(target=_claim, args=(path, results)) for _ in range(3)]
    for p in claimers:
        p.start()
    claimed = [t for _ in claimers for t in results.get(timeout=120)]
    for p in claimers:
        p.join(60)
    assert sorted(claimed) == sorted(f"t{i}" for i in range(300))  # each exactly once
    outbox.close()
