"""The review spool's group commit: concurrent submissions share outbox transactions, and a resolved future
means the tickets are in the outbox (what an answered score request promises)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import wait

from tests.unit.review.conftest import scored
from triage.review.service import ReviewService
from triage.review.spool import ReviewSpool, _Submitted, write_groups
from triage.tickets import ScoredTicket


def _sub(ids: Sequence[str], version: str = "v1") -> _Submitted:
    return _Submitted([scored(i, 0.5) for i in ids], "m", version)


def test_groups_keep_order_and_split_on_model_size_and_repeated_ids() -> None:
    work = [_sub(["a"]), _sub(["b", "c"]), _sub(["a"]), _sub(["d"], "v2"), _sub(["e"], "v2"), _sub(["f", "g", "h"])]
    groups = [[[it.ticket.id for it in s.items] for s in g] for g in write_groups(work, max_items=3)]
    assert groups == [[["a"], ["b", "c"]],  # "a" again starts a new group: stored after the first "a"
                      [["a"]],
                      [["d"], ["e"]],  # another model version: its own transaction
                      [["f", "g", "h"]]]
    assert [len(g) for g in write_groups([_sub([str(i) for i in range(10)])], max_items=3)] == [1]  # kept whole


class CountingService:
    """Wraps the review service: counts enqueue calls (one outbox transaction each) and can hold one open."""

    def __init__(self, inner: ReviewService) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def enqueue(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> object:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(len(items))
        return self.inner.enqueue(items, model_name, model_version)


def test_submissions_made_during_a_write_share_the_next_transaction(service: ReviewService) -> None:
    counting = CountingService(service)
    spool = ReviewSpool(counting)
    spool.start()
    try:
        counting.gate.clear()
        first = spool.submit([scored("t0", 0.5)], "m", "v1")
        assert counting.entered.wait(5)  # the writer holds the first transaction open
        later = [spool.submit([scored(f"t{i}", 0.5)], "m", "v1") for i in range(1, 21)]
        assert not any(f.done() for f in later)  # nothing answered before it is stored
        counting.gate.set()
        done, _ = wait([first, *later], timeout=10)
        assert len(done) == 21 and all(f.result() is True for f in done)
        assert counting.calls == [1, 20]  # 21 submissions, 2 transactions
        assert spool.transactions == 2
        assert service.status()["waiting"] == 21
    finally:
        spool.stop()


def test_a_resolved_future_means_stored_and_stop_writes_what_was_submitted(service: ReviewService) -> None:
    counting = CountingService(service)
    spool = ReviewSpool(counting)
    spool.start()
    counting.gate.clear()
    futures = [spool.submit([scored(f"s{i}", 0.5)], "m", "v1") for i in range(5)]
    assert counting.entered.wait(5)
    futures[-1].cancel()  # a caller that went away: its tickets are stored all the same
    stopper = threading.Thread(target=spool.stop)
    stopper.start()
    counting.gate.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert all(f.result() is True for f in futures[:-1])
    assert service.outbox.states([f"s{i}" for i in range(5)]) == {"waiting": 5}
    # After stop there is no writer: a submission is stored on the caller's thread.
    late = spool.submit([scored("late", 0.5)], "m", "v1")
    assert late.done() and late.result() is True
    assert service.status()["waiting"] == 6


def test_without_a_writer_submit_stores_at_once(service: ReviewService) -> None:
    spool = ReviewSpool(service)
    future = spool.submit([scored("x", 0.5), scored("y", 0.5, route="auto")], "m", "v1")
    assert future.done() and future.result() is True
    assert service.status()["waiting"] == 1
