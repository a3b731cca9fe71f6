"""The decision log's writer process: builds rows from flattened decisions and inserts them, off the API's GIL.

The API process only flattens each scored ticket into a tuple and sends a batch through a pipe; hashing, JSON and
the database write happen here, in a child process of its own (started with `spawn`, so it shares no threads or
locks with the server). Every batch is answered (`ok` with the count, or `error` with the reason), so the caller
knows what is on record. The child exits when told to stop or when its parent goes away (the pipe closes).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from triage.decisions.store import DecisionStore
from triage.text import script_of

log = logging.getLogger(__name__)

# One scored ticket as the log keeps it: (ticket_id, text, source, category, severity, priority, route, confidence,
# category_scores, severity_scores, reasons, prediction_set, audit_sample).
Flat = tuple[Any, ...]
# Decisions scored together: (model_name, model_version, api_key_id, decided_at) and their flattened tickets.
FlatBatch = tuple[tuple[str, str, str | None, datetime], Sequence[Flat]]


class WriterUnavailable(RuntimeError):
    """The writer process is gone (killed, crashed or never started): the caller writes in its own thread."""


def row_of(flat: Flat, model_name: str, model_version: str, api_key_id: str | None, decided_at: datetime,
           policy_version: str, store_text: bool) -> dict[str, Any]:
    """One decision_log row from one flattened decision."""
    (ticket_id, text, source, category, severity, priority, route, confidence, cats, sevs, reasons, pset,
     audit) = flat
    return {
        "ticket_id": ticket_id, "decided_at": decided_at, "model_name": model_name,
        "model_version": model_version, "policy_version": policy_version, "category": category,
        "severity": severity, "priority": priority, "route": route, "confidence": confidence,
        "category_scores": {k: round(float(v), 6) for k, v in cats.items()},
        "severity_scores": {k: round(float(v), 6) for k, v in sevs.items()},
        "reasons": list(reasons), "prediction_set": list(pset), "api_key_id": api_key_id,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(), "text_length": len(text),
        "text": text if store_text else None, "script": script_of(text), "source": source, "audit_sample": audit,
    }


def rows_of(batches: Sequence[FlatBatch], policy_version: str, store_text: bool) -> list[dict[str, Any]]:
    """decision_log rows of flattened batches, in order."""
    return [row_of(flat, *meta, policy_version, store_text) for meta, flats in batches for flat in flats]


def _serve(url: str, policy_version: str, store_text: bool, nice: int, conn: Connection) -> None:
    """The child's loop: one answer per request until told to stop or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which then drains and stops us
    if nice:
        try:
            os.nice(nice)  # background work: on a busy host the requests' threads come first
        except OSError as err:
            log.warning("decision writer: could not lower its priority: %s", err)
    store = DecisionStore(url)
    try:
        while True:
            try:
                op, payload = conn.recv()
            except (EOFError, OSError):
                return
            if op == "stop":
                conn.send(("ok", 0, None))
                return
            try:
                n = store.insert_decisions(rows_of(payload, policy_version, store_text))
                conn.send(("ok", n, None))
            except Exception as err:  # reported to the parent, which retries and counts
                conn.send(("error", 0, f"{type(err).__name__}: {err}"))
    finally:
        store.close()


class WriterProcess:
    """A child process that writes flattened decision batches to the log's database."""

    def __init__(self, url: str, policy_version: str, store_text: bool, nice: int = 0) -> None:
        self.url = url
        self.policy_version = policy_version
        self.store_text = store_text
        self.nice = nice
        self._conn: Connection | None = None
        self._proc: BaseProcess | None = None

    def start(self) -> None:
        """Start the child (returns at once; the child imports and connects in the background)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(self.url, self.policy_version, self.store_text, self.nice, child),
                           name="triage-decision-writer", daemon=True)
        proc.start()
        child.close()
        self._conn, self._proc = parent, proc

    @property
    def alive(self) -> bool:
        """Whether the child is running."""
        return self._proc is not None and self._proc.is_alive()

    def write(self, batches: Sequence[FlatBatch]) -> int:
        """Write batches; returns the rows written. Raises RuntimeError with the database's reason when the write
        failed, WriterUnavailable when the child is gone."""
        if self._conn is None:
            raise WriterUnavailable("decision writer process not started")
        try:
            self._conn.send(("write", list(batches)))
            status, n, err = self._conn.recv()
        except (EOFError, OSError) as e:
            self._close()
            raise WriterUnavailable(f"decision writer process is gone: {type(e).__name__}: {e}") from e
        if status != "ok":
            raise RuntimeError(err)
        return int(n)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the child to exit and wait for it (killed if it does not exit in time)."""
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(("stop", None))
                if self._conn.poll(timeout_s):
                    self._conn.recv()
            except (EOFError, OSError):
                pass
        if self._proc is not None:
            self._proc.join(timeout_s)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout_s)
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
