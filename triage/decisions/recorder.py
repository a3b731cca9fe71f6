"""Record every scored ticket off the request path: a bounded in-memory queue drained by one writer thread.

The request only appends (ScoredTicket list, model, key id) to a queue; the writer turns them into rows, writes
them in batches of up to `batch_size` every `flush_interval_s`, marks the audit sample, and purges stored texts
past retention on a schedule. `stop()` drains the queue before returning, so a clean shutdown loses nothing.
A crash (kill -9, power loss) loses what was still queued: at most about `flush_interval_s` of decisions plus the
batch being written. When the database is down, a batch is retried five times (about 3 s) and then dropped and
counted (`dropped`, logged as an error); once `queue_max` decisions wait, new ones are dropped likewise. Scoring
itself never waits or fails because of the log.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from triage.decisions.store import DecisionStore, utcnow
from triage.settings import DecisionsSettings, api_key_id
from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)

AuditSink = Callable[[Sequence[ScoredTicket], str, str], object]
_SCRIPTS = (("LATIN", "latin"), ("CYRILLIC", "cyrillic"), ("ARABIC", "arabic"), ("HANGUL", "hangul"),
            ("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("CJK", "cjk"), ("GREEK", "greek"), ("HEBREW", "hebrew"),
            ("DEVANAGARI", "devanagari"), ("THAI", "thai"))


@lru_cache(maxsize=65_536)
def _script_of_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return next((s for prefix, s in _SCRIPTS if name.startswith(prefix)), "other")


def script_of(text: str, sample: int = 400) -> str:
    """The dominant writing system of a text's letters (the language mix a log can see without a detector)."""
    head = text[:sample]
    if head.isascii():
        return "latin" if any(ch.isalpha() for ch in head) else "none"
    counts: Counter[str] = Counter(_script_of_char(ch) for ch in head if ch.isalpha())
    return counts.most_common(1)[0][0] if counts else "none"


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


def decision_row(item: ScoredTicket, model_name: str, model_version: str, policy_version: str,
                 api_key_id: str | None, decided_at: datetime, store_text: bool, audit_rate: float) -> dict[str, Any]:
    """One decision_log row for one scored ticket."""
    d = item.decision
    text = item.ticket.text
    meta = item.ticket.metadata or {}
    source = meta.get("source", meta.get("channel"))
    return {
        "ticket_id": item.ticket.id, "decided_at": decided_at, "model_name": model_name,
        "model_version": model_version, "policy_version": policy_version, "category": d.category,
        "severity": d.severity, "priority": float(d.priority), "route": d.route, "confidence": float(d.confidence),
        "category_scores": {k: round(float(v), 6) for k, v in item.scores.categories.items()},
        "severity_scores": {k: round(float(v), 6) for k, v in item.scores.severity.items()},
        "reasons": list(d.reasons), "prediction_set": list(d.prediction_set), "api_key_id": api_key_id,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(), "text_length": len(text),
        "text": text if store_text else None, "script": script_of(text),
        "source": None if source is None else str(source)[:128],
        "audit_sample": d.route == "auto" and in_audit_sample(item.ticket.id, audit_rate),
    }


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
        self._queue: queue.Queue[_Batch] = queue.Queue()
        self._queued = 0  # decisions waiting (approximate under races; only bounds memory)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # a flush returns only once every decision queued before it is written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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
        self._queue.put(_Batch(list(items), model_name, model_version, api_key_id, decided_at or utcnow()))

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write everything still queued, then stop the writer thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Write every queued decision now (from the caller's thread); returns how many were written."""
        total = 0
        with self._write_lock:
            while True:
                rows, audits = self._take(self.settings.batch_size)
                if not rows:
                    return total
                total += self._write(rows, audits)

    def _take(self, limit: int) -> tuple[list[dict[str, Any]], list[_Batch]]:
        """Up to about `limit` rows from what is queued now (never waits)."""
        rows: list[dict[str, Any]] = []
        audits: list[_Batch] = []
        while len(rows) < limit:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                self._queued -= len(batch.items)
            s = self.settings
            new = [decision_row(it, batch.model_name, batch.model_version, self.policy_version, batch.api_key_id,
                                batch.decided_at, s.store_text, s.audit_rate) for it in batch.items]
            rows += new
            picked = [it for it, row in zip(batch.items, new, strict=True) if row["audit_sample"]]
            if picked:
                audits.append(_Batch(picked, batch.model_name, batch.model_version, None, batch.decided_at))
        return rows, audits

    def _write(self, rows: list[dict[str, Any]], audits: list[_Batch]) -> int:
        for attempt in range(5):
            try:
                self.store.insert_decisions(rows)
                break
            except Exception as err:  # the database is down or locked: retry, then give up on this batch
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("decision log write failed (attempt %d): %s", attempt + 1, self.last_error)
                time.sleep(min(2.0**attempt * 0.1, 2.0))
        else:
            self.dropped += len(rows)
            log.error("decision log: %d decision(s) lost after 5 failed writes", len(rows))
            return 0
        self.written += len(rows)
        if self.audit_sink is not None:
            for b in audits:  # the random audit sample goes to the experts like a review item
                try:
                    self.audit_sink(b.items, b.model_name, b.model_version)
                except Exception as err:
                    log.warning("audit sample not queued for review: %s", err)
        return len(rows)

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
