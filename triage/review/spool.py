"""A bounded in-memory spool in front of the review outbox: scoring never fails because review storage fails.

When the outbox cannot take tickets (disk full, read-only, locked), the scored tickets wait here, the failure is
counted and shown (`state`, `stats`), one log line is written per change of state (never ticket text), and a
background thread retries until the outbox takes them. The outbox's enqueue is idempotent per ticket id and one
transaction per batch, so a retried batch is stored once.

On the request path the model thread stores each micro-batch's review tickets here in one outbox transaction
(`serving.batching`), before any of its callers is answered: an answered request still means its review tickets
are stored, while the event loop never runs SQLite and concurrent requests share one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)


class Enqueuer(Protocol):
    """What the spool needs from the review service."""

    def enqueue(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> object:
        """Persist tickets routed to review (and withdraw queued ones now routed automatically)."""
        ...


@dataclass(frozen=True)
class SpoolStats:
    """Counters since start: failed outbox writes, tickets held now, tickets dropped (spool full), retried in."""

    failures: int
    pending: int
    dropped: int
    recovered: int
    last_error: str | None


def describe(err: BaseException) -> str:
    """A short reason without ticket content (SQLite and OS errors name the condition, not the data)."""
    if isinstance(err, sqlite3.Error | OSError):
        return f"{type(err).__name__}: {str(err)[:200]}"
    return type(err).__name__


class ReviewSpool:
    """Hands review tickets to the outbox; holds up to `capacity` tickets in memory while it fails."""

    def __init__(self, target: Enqueuer, capacity: int = 10_000, retry_interval_s: float = 5.0) -> None:
        self.target = target
        self.capacity = capacity
        self.retry_interval_s = retry_interval_s
        self.transactions = 0  # outbox transactions that stored tickets (for tests and benchmarks)
        self._pending: deque[tuple[list[ScoredTicket], str, str]] = deque()
        self._held = 0
        self._lock = threading.Lock()
        self._failures = 0
        self._dropped = 0
        self._recovered = 0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ in

    def enqueue(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> bool:
        """Store tickets in the outbox (after any held ones); on failure hold them. Never raises for storage.

        Returns True when the tickets reached the outbox now.
        """
        batch = list(items)
        if not batch:
            return True
        with self._lock:
            if self._pending:
                self._hold(batch, model_name, model_version)
                stored = False
            else:
                stored = self._try(batch, model_name, model_version)
                if not stored:
                    self._hold(batch, model_name, model_version)
                elif self._last_error is not None:
                    log.warning("review outbox writable again")
                    self._last_error = None
        return stored

    def flush(self) -> int:
        """Retry held batches, oldest first, until one fails; returns how many tickets reached the outbox."""
        moved = 0
        with self._lock:
            while self._pending:
                batch, name, version = self._pending[0]
                if not self._try(batch, name, version):
                    break
                self._pending.popleft()
                self._held -= len(batch)
                self._recovered += len(batch)
                moved += len(batch)
            if moved and not self._pending:
                log.warning("review outbox writable again: %d held ticket(s) stored", self._recovered)
                self._last_error = None
        return moved

    def _try(self, batch: list[ScoredTicket], name: str, version: str) -> bool:
        try:
            self.target.enqueue(batch, name, version)
            self.transactions += 1
            return True
        except (sqlite3.Error, OSError) as err:
            self._failures += 1
            reason = describe(err)
            if reason != self._last_error:  # one line per change of state, not one per request
                log.error("review outbox cannot take tickets (%s); holding them in memory (up to %d)",
                          reason, self.capacity)
            self._last_error = reason
            return False

    def _hold(self, batch: list[ScoredTicket], name: str, version: str) -> None:
        self._pending.append((batch, name, version))
        self._held += len(batch)
        while self._held > self.capacity and self._pending:
            old, _, _ = self._pending.popleft()
            self._held -= len(old)
            self._dropped += len(old)
            log.error("review spool full: dropped %d ticket(s) (%d dropped so far)", len(old), self._dropped)

    # ------------------------------------------------------------------------------------------ status

    @property
    def degraded(self) -> bool:
        """True while tickets are held because the outbox refuses them."""
        return self._held > 0 or self._last_error is not None

    def stats(self) -> SpoolStats:
        """Counters for /readyz and /metrics."""
        return SpoolStats(self._failures, self._held, self._dropped, self._recovered, self._last_error)

    # ------------------------------------------------------------------------------------------ background

    def start(self) -> None:
        """Retry held tickets every retry_interval_s (daemon thread)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="review-spool", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop retrying and make a last attempt; what still fails is lost with the process (and logged)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        self.flush()
        if self._held:
            log.error("stopping with %d review ticket(s) the outbox never took", self._held)

    def _run(self) -> None:
        while not self._stop.wait(self.retry_interval_s):
            if self._pending:
                started = time.monotonic()
                self.flush()
                log.debug("spool flush took %.3f s", time.monotonic() - started)
