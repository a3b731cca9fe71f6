"""Micro-batching groups concurrent requests into one model call; the reloader swaps models safely."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from serving.batching import MicroBatcher
from serving.model_source import Reloader
from serving.state import ModelSlot, Serving
from triage.models.base import LoadedModel, ModelCard, Prediction
from triage.scorer import TicketLimits
from triage.taxonomy import Policy
from triage.tickets import ScoredTicket, Ticket


class CountingClassifier:
    """Spam probability = text length / 100; counts model calls and their sizes."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.card = ModelCard("fake", ["spam"], ["none", "low", "medium", "high", "critical"], "default", "1", "x")
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> Prediction:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.delay_s)
        cats = np.array([[min(len(t) / 100, 1.0)] for t in texts])
        sev = np.tile([1.0, 0, 0, 0, 0], (len(texts), 1))
        return Prediction(cats, sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


def test_concurrent_jobs_share_model_calls_and_keep_their_results(policy: Policy) -> None:
    clf = CountingClassifier()
    slot = ModelSlot()
    slot.install(LoadedModel(clf, "m", "1", "champion", None, {}), policy, TicketLimits())

    async def run() -> list[list[float]]:
        batcher = MicroBatcher(slot, max_items=16, max_wait_ms=20)
        batcher.start()
        try:
            jobs = [batcher.score([Ticket(f"t{i}", "x" * i)]) for i in range(1, 41)]
            results = await asyncio.gather(*jobs)
        finally:
            await batcher.stop()
        return [[s.scores.categories["spam"] for s in scored] for _, scored in results]

    out = asyncio.run(run())
    assert out == [[round(i / 100, 6)] for i in range(1, 41)]
    assert sum(clf.calls) == 40
    assert len(clf.calls) < 40 and max(clf.calls) <= 16


def test_requests_that_queued_while_the_model_was_busy_join_one_call_without_waiting(policy: Policy) -> None:
    clf = CountingClassifier(delay_s=0.05)
    slot = ModelSlot()
    slot.install(LoadedModel(clf, "m", "1", "champion", None, {}), policy, TicketLimits())

    async def run() -> None:
        batcher = MicroBatcher(slot, max_items=16, max_wait_ms=0)  # no waiting for company: only what queued
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.score([Ticket("a", "first")]))
            await asyncio.sleep(0.01)  # the first call is running; these five queue behind it
            rest = [batcher.score([Ticket(f"t{i}", "x" * i)]) for i in range(1, 6)]
            await asyncio.gather(first, *rest)
        finally:
            await batcher.stop()

    asyncio.run(run())
    assert clf.calls == [1, 5]


def test_after_score_stores_each_batch_on_the_model_thread_before_any_caller_is_answered(policy: Policy) -> None:
    clf = CountingClassifier(delay_s=0.05)
    slot = ModelSlot()
    slot.install(LoadedModel(clf, "m", "1", "champion", None, {}), policy, TicketLimits())
    stored: list[list[str]] = []
    threads: set[str] = set()

    def store(serving: Serving, scored: list[ScoredTicket]) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.02)  # a slow write: no caller may be answered before it ends
        stored.append([s.ticket.id for s in scored])

    async def run() -> list[int]:
        batcher = MicroBatcher(slot, max_items=16, max_wait_ms=0, after_score=store)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.score([Ticket("a", "first")]))
            await asyncio.sleep(0.01)
            rest = [batcher.score([Ticket(f"t{i}", "x" * i)]) for i in range(1, 6)]
            answered_after = []
            for job in asyncio.as_completed([first, *rest]):
                _, scored = await job
                answered_after.append(sum(s.ticket.id in ids for ids in stored for s in scored))
            return answered_after
        finally:
            await batcher.stop()

    seen = asyncio.run(run())
    assert [sorted(ids) for ids in stored] == [["a"], ["t1", "t2", "t3", "t4", "t5"]]  # one store per call
    assert seen == [1] * 6  # every caller's tickets were stored when it got its answer
    assert threads and all(name.startswith("model") for name in threads)


class OverlapClassifier(CountingClassifier):
    """Records how many model calls run at the same moment; texts starting with "boom" make the call fail."""

    def __init__(self, delay_s: float = 0.05) -> None:
        super().__init__(delay_s)
        self.active = 0
        self.most_active = 0

    def predict(self, texts: Sequence[str]) -> Prediction:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if any(t.startswith("boom") for t in texts):
                raise RuntimeError("model exploded")
            return super().predict(texts)
        finally:
            with self.lock:
                self.active -= 1


def test_workers_run_model_calls_at_the_same_time_and_a_failed_call_spares_the_others(policy: Policy) -> None:
    clf = OverlapClassifier()
    slot = ModelSlot()
    slot.install(LoadedModel(clf, "m", "1", "champion", None, {}), policy, TicketLimits())

    async def run() -> tuple[list[object], list[float]]:
        batcher = MicroBatcher(slot, max_items=4, max_wait_ms=1, workers=2)
        batcher.start()
        try:
            first = await asyncio.gather(*[batcher.score([Ticket(f"t{i}", "x" * i)]) for i in range(1, 17)])
            failed = await asyncio.gather(batcher.score([Ticket("b", "boom")]), return_exceptions=True)
            after = await batcher.score([Ticket("a", "x" * 50)])
        finally:
            await batcher.stop()
        spam = [s.scores.categories["spam"] for _, scored in first for s in scored]
        return [*failed, after[1][0].scores.categories["spam"]], spam

    (error, after), spam = asyncio.run(run())
    assert spam == [round(i / 100, 6) for i in range(1, 17)]
    assert clf.most_active == 2  # two workers overlapped, never more
    assert isinstance(error, RuntimeError) and "exploded" in str(error)
    assert after == 0.5  # the loop survived the failed call


def test_workers_must_be_positive(policy: Policy) -> None:
    import pytest

    with pytest.raises(ValueError, match="workers must be at least 1"):
        MicroBatcher(ModelSlot(), workers=0)


class FlakySource:
    def __init__(self, policy: Policy) -> None:
        self.version = "1"
        self.fail = False

    def current_version(self) -> str | None:
        return self.version

    def load(self) -> LoadedModel:
        if self.fail:
            raise RuntimeError("artifact download failed")
        return LoadedModel(CountingClassifier(0), "m", self.version, "champion", None, {})


def test_reloader_swaps_on_a_new_version_and_keeps_serving_on_failure(policy: Policy) -> None:
    source, slot = FlakySource(policy), ModelSlot()
    reloader = Reloader(source, slot, policy, TicketLimits(), interval_s=0)
    assert reloader.load_now() and slot.current is not None and slot.current.loaded.version == "1"
    assert not reloader.load_now()  # same version: nothing to do
    source.version, source.fail = "2", True
    assert not reloader.load_now()
    assert slot.current.loaded.version == "1" and "could not be loaded" in slot.last_error
    source.fail = False
    assert reloader.load_now() and slot.current.loaded.version == "2" and slot.last_error == ""
