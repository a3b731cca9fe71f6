"""Record every scored ticket off the request path: a bounded in-memory queue drained by one writer thread.

The request flattens its scored tickets into tuples of strings and numbers, marks the audit sample, and appends
them to a queue: none of the request's objects is held until the flush (held, they cost the server about 4% of its
throughput, as every garbage collection walked them). The writer thread hands batches of up to `batch_size` every
`flush_interval_s` to the writer process (`writer.py`), which builds the rows and writes them; with
TRIAGE_DECISIONS__WRITER=thread (or an in-memory database) the thread does that itself. Stored texts past
retention are purged on a schedule. `stop()` drains the queue before returning, so a clean shutdown loses nothing.
A crash (kill -9, power loss) loses what was still queued: at most about `flush_interval_s` of decisions plus the
batch being written. When the database is down, a batch is retried five times (about 3 s) and then dropped and
counted (`dropped`, logged as an error); once `queue_max` decisions wait, new ones are dropped likewise. If the
writer process dies, the thread takes over its work. Scoring itself never waits or fails because of the log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from triage.decisions.store import DecisionStore, utcnow
from triage.decisions.writer import Flat, FlatBatch, WriterProcess, WriterUnavailable, row_of, rows_of
from triage.settings import DecisionsSettings, api_key_id
from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)

AuditSink = Callable[[Sequence[ScoredTicket], str, str], object]


def key_id(key: str) -> str:
    """A stable, non-reversible id of an API key (the key itself is never stored); the name the API gives a plain
    key (TRIAGE_API_KEYS without `name:`), so the log and the decision records agree."""
    return api_key_id(key)


def in_audit_sample(ticket_id: str, rate: float) -> bool:
    """Whether an auto-routed ticket belongs to the random audit sample (deterministic per ticket id)."""
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.sha256(b"audit:" + ticket_id.encode()).digest()[:8], "big")
    return h / 2**64 < rate


def flatten(item: ScoredTicket, audit_rate: float) -> Flat:
    """What the log keeps of one scored ticket, as a tuple cheap to send to the writer process."""
    d = item.decision
    t = item.ticket
    meta = t.metadata or {}
    source = meta.get("source", meta.get("channel"))
    return (t.id, t.text, None if source is None else str(source)[:128], d.category, d.severity,
            float(d.priority), d.route, float(d.confidence), item.scores.categories, item.scores.severity,
            d.reasons, d.prediction_set, d.route == "auto" and in_audit_sample(t.id, audit_rate))


def decision_row(item: ScoredTicket, model_name: str, model_version: str, policy_version: str,
                 api_key_id: str | None, decided_at: datetime, store_text: bool, audit_rate: float) -> dict[str, Any]:
    """One decision_log row for one scored ticket."""
    return row_of(flatten(item, audit_rate), model_name, model_version, api_key_id, decided_at, policy_version,
                  store_text)


@dataclass(frozen=True)
class _Batch:
    items: Sequence[ScoredTicket]
    model_name: str
    model_version: str
    api_key_id: str | None
    decided_at: datetime


class Recorder:
    """Queues decisions from the request path and writes them to the store from one background thread."""

    def __init__(self, store: DecisionStore, settings: DecisionsSettings, policy_version: str,
                 audit_sink: AuditSink | None = None) -> None:
        self.store = store
        self.settings = settings
        self.policy_version = policy_version
        self.audit_sink = audit_sink
        # deque appends and pops are atomic: the request thread and the writer thread need no lock around them.
        self._queue: deque[tuple[FlatBatch, tuple[ScoredTicket, ...]]] = deque()
        self._queued = 0  # decisions waiting (approximate under races; only bounds memory)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # a flush returns only once every decision queued before it is written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: WriterProcess | None = None
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._next_purge = time.monotonic()

    def record(self, items: Sequence[ScoredTicket], model_name: str, model_version: str,
               api_key_id: str | None = None, decided_at: datetime | None = None) -> None:
        """Queue decisions for writing; never blocks, never raises for a slow or broken database."""
        if not items:
            return
        with self._lock:
            if self._queued + len(items) > self.settings.queue_max:
                self.dropped += len(items)
                log.warning("decision log queue full (%d waiting): %d decision(s) dropped", self._queued, len(items))
                return
            self._queued += len(items)
        # Flattened now, so the scored tickets (a graph of objects the garbage collector would walk on every
        # collection until the flush) are freed with the request; the tuples of strings and numbers left are not
        # tracked by the collector. Only the audit sample keeps its tickets, for the review queue.
        flats = tuple(flatten(it, self.settings.audit_rate) for it in items)
        picked = tuple(it for it, flat in zip(items, flats, strict=True) if flat[-1])
        self._queue.append((((model_name, model_version, api_key_id, decided_at or utcnow()), flats), picked))

    def start(self) -> None:
        """Start the writer thread (and the writer process, unless configured off or the database is in memory)."""
        if self._writer is None and self.settings.writer == "process" and self.store.shareable:
            writer = WriterProcess(self.store.url, self.policy_version, self.settings.store_text,
                                   self.settings.writer_nice)
            try:
                writer.start()
                self._writer = writer
            except Exception as err:  # e.g. no process may be spawned here: the thread writes instead
                log.warning("decision log: writer process not started (%s); writing from a thread", err)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write everything still queued, then stop the writer thread and process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush()
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    def flush(self) -> int:
        """Write every queued decision now (from the caller's thread); returns how many were written."""
        total = 0
        with self._write_lock:
            while True:
                batches, n, audits = self._take(self.settings.batch_size)
                if not n:
                    return total
                total += self._write(batches, n, audits)

    def _take(self, limit: int) -> tuple[list[FlatBatch], int, list[_Batch]]:
        """Up to about `limit` flattened decisions from what is queued now (never waits), their count, and the
        audit sample among them."""
        batches: list[FlatBatch] = []
        audits: list[_Batch] = []
        n = 0
        while n < limit:
            try:
                batch, picked = self._queue.popleft()
            except IndexError:
                break
            (model_name, model_version, _key, decided_at), flats = batch
            with self._lock:
                self._queued -= len(flats)
            batches.append(batch)
            n += len(flats)
            if picked:
                audits.append(_Batch(picked, model_name, model_version, None, decided_at))
        return batches, n, audits

    def _insert(self, batches: list[FlatBatch]) -> None:
        if self._writer is not None:
            try:
                self._writer.write(batches)
                return
            except WriterUnavailable as err:
                log.error("decision log: %s; writing from a thread from now on", err)
                self._writer = None
        self.store.insert_decisions(rows_of(batches, self.policy_version, self.settings.store_text))

    def _write(self, batches: list[FlatBatch], n: int, audits: list[_Batch]) -> int:
        for attempt in range(5):
            try:
                self._insert(batches)
                break
            except Exception as err:  # the database is down or locked: retry, then give up on this batch
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("decision log write failed (attempt %d): %s", attempt + 1, self.last_error)
                time.sleep(min(2.0**attempt * 0.1, 2.0))
        else:
            self.dropped += n
            log.error("decision log: %d decision(s) lost after 5 failed writes", n)
            return 0
        self.written += n
        if self.audit_sink is not None:
            for b in audits:  # the random audit sample goes to the experts like a review item
                try:
                    self.audit_sink(b.items, b.model_name, b.model_version)
                except Exception as err:
                    log.warning("audit sample not queued for review: %s", err)
        return n

    def purge_now(self) -> int:
        """Delete stored texts past retention; returns how many texts were deleted."""
        n = self.store.purge_texts(timedelta(days=self.settings.retention_days))
        if n:
            log.info("decision log: purged %d text(s) older than %s days", n, self.settings.retention_days)
        return n

    def _run(self) -> None:
        s = self.settings
        while not self._stop.wait(s.flush_interval_s):
            self.flush()
            if s.purge_interval_s > 0 and time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + s.purge_interval_s
                try:
                    self.purge_now()
                except Exception as err:
                    log.warning("decision log purge failed: %s", err)
