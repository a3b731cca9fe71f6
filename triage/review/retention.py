"""Ticket text is kept only while it has a purpose, and the outbox only as long as the retention period.

- A delivered row whose task is labelled keeps ids, scores and the prediction but not the text or metadata (its
  row stays until the retention period has passed: it still de-duplicates a re-sent ticket).
- A done row (sent or rejected) older than the retention period is deleted, and so are id-conflict records last
  seen before it: with a steady flow of tickets the outbox holds about rate x review share x retention done rows,
  and SQLite reuses the freed pages (new files shrink too: `auto_vacuum=INCREMENTAL`, see `Outbox`).
- Waiting rows (not yet delivered) are never purged nor deleted: nothing accepted is lost.

The ticket id de-duplicates re-sent tickets only while its row exists: a ticket re-sent after its row was deleted
(more than the retention period after delivery) is queued, and delivered, again. The duplicate-suppression window is
the retention period. A late annotation of a deleted row's task is still recorded: its ticket id and text come with
the Label Studio task. Annotations keep their text: they are the labelled training data (`triage review export`),
which is their purpose.
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
    """What one purge did: text removed from labelled rows (kept), done rows past retention deleted, and every row
    deleted (those plus id-conflict records last seen before the retention period)."""

    labelled: int
    expired: int
    deleted: int = 0


def _redact(payload: str) -> str:
    raw = json.loads(payload)
    data = raw.get("data") or {}
    data[TEXT] = PURGED
    data["metadata"] = {}
    raw["data"] = data
    raw["purged"] = True
    return json.dumps(raw, ensure_ascii=False)


def purge(outbox: Outbox, retention_days: float, now: float | None = None) -> PurgeReport:
    """Delete done (sent or rejected) rows delivered over `retention_days` ago and remove ticket text and metadata
    from labelled ones (0 = only the labelled ones lose their text, at once; nothing is deleted by age)."""
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400
    labelled = expired = conflicts = 0
    with outbox._tx() as db:  # one write transaction; the outbox owns its connection handling
        if retention_days > 0:
            expired = db.execute("DELETE FROM queue WHERE state IN ('sent', 'rejected') "
                                 "AND COALESCE(sent_at, updated_at) < ?", (cutoff,)).rowcount
            conflicts = db.execute("DELETE FROM conflicts WHERE last_seen < ?", (cutoff,)).rowcount
        rows = db.execute(
            """SELECT q.ticket_id, q.payload FROM queue q
               WHERE q.state IN ('sent', 'rejected') AND q.payload NOT LIKE '%"purged": true%'
               AND EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = q.task_id AND a.deleted = 0
                           AND a.was_cancelled = 0)""").fetchall()
        for ticket_id, payload in rows:
            db.execute("UPDATE queue SET payload = ?, prediction_dirty = 0 WHERE ticket_id = ?",
                       (_redact(payload), ticket_id))
            labelled += 1
    if expired or conflicts:
        outbox.release_free_pages()
    return PurgeReport(labelled=labelled, expired=expired, deleted=expired + conflicts)


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
                if report.labelled or report.deleted:
                    log.info("review outbox: text removed from %d labelled row(s); %d row(s) past %g day(s) "
                             "retention deleted (%d done ticket(s), %d id-conflict record(s))", report.labelled,
                             report.deleted, self.retention_days, report.expired, report.deleted - report.expired)
            except Exception as err:  # housekeeping must never take the server down
                log.warning("review outbox purge failed: %s", type(err).__name__)
            if self._stop.wait(self.interval_s):
                return
