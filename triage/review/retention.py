"""Ticket text is kept only while it has a purpose: once a task is delivered and labelled, or once it is older
than the retention period, the outbox row keeps ids, scores and the prediction but not the text or metadata.

Waiting rows (not yet delivered) are never purged. Annotations keep their text: they are the labelled training
data (`triage review export`), which is their purpose.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from triage.review.annotations import TEXT
from triage.review.outbox import Outbox

log = logging.getLogger(__name__)
PURGED = "[purged]"


@dataclass(frozen=True)
class PurgeReport:
    """Rows whose text was removed: delivered and labelled, or past retention."""

    labelled: int
    expired: int


def _redact(payload: str) -> str:
    raw = json.loads(payload)
    data = raw.get("data") or {}
    data[TEXT] = PURGED
    data["metadata"] = {}
    raw["data"] = data
    raw["purged"] = True
    return json.dumps(raw, ensure_ascii=False)


def purge(outbox: Outbox, retention_days: float, now: float | None = None) -> PurgeReport:
    """Remove ticket text and metadata from delivered rows that are labelled, or sent/rejected over
    `retention_days` ago (0 = only labelled ones are purged at once, nothing is kept for a period)."""
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400
    counts = {"labelled": 0, "expired": 0}
    with outbox._tx() as db:  # one write transaction; the outbox owns its connection handling
        rows = db.execute(
            """SELECT q.ticket_id, q.payload,
                      EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = q.task_id AND a.deleted = 0
                              AND a.was_cancelled = 0) AS labelled,
                      COALESCE(q.sent_at, q.updated_at) AS done_at
               FROM queue q
               WHERE q.state IN ('sent', 'rejected') AND q.payload NOT LIKE '%"purged": true%'""").fetchall()
        for ticket_id, payload, labelled, done_at in rows:
            if labelled:
                kind = "labelled"
            elif retention_days > 0 and done_at < cutoff:
                kind = "expired"
            else:
                continue
            db.execute("UPDATE queue SET payload = ?, prediction_dirty = 0 WHERE ticket_id = ?",
                       (_redact(payload), ticket_id))
            counts[kind] += 1
    return PurgeReport(**counts)


class RetentionTask:
    """Runs `purge` every `interval_s` in a daemon thread (the server's housekeeping)."""

    def __init__(self, outbox: Outbox, retention_days: float, interval_s: float = 600.0) -> None:
        self.outbox, self.retention_days, self.interval_s = outbox, retention_days, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Purge now and then every interval."""
        self._thread = threading.Thread(target=self._run, name="review-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                report = purge(self.outbox, self.retention_days)
                if report.labelled or report.expired:
                    log.info("review outbox: text removed from %d labelled and %d expired row(s)",
                             report.labelled, report.expired)
            except Exception as err:  # housekeeping must never take the server down
                log.warning("review outbox purge failed: %s", type(err).__name__)
            if self._stop.wait(self.interval_s):
                return
