"""The durable review queue and label store: one SQLite file, written before anything is sent."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from triage.errors import ReviewError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    ticket_id        TEXT PRIMARY KEY,
    payload          TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    priority         REAL NOT NULL,
    score            REAL NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('waiting', 'sent', 'rejected')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_until    REAL,
    last_error       TEXT,
    enqueued_at      REAL NOT NULL,
    updated_at       REAL NOT NULL,
    sent_at          REAL,
    task_id          INTEGER,
    prediction_dirty INTEGER NOT NULL DEFAULT 0,
    usefulness       REAL
);
CREATE INDEX IF NOT EXISTS queue_waiting ON queue (state, enqueued_at);
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id  INTEGER PRIMARY KEY,
    task_id        INTEGER,
    ticket_id      TEXT,
    text           TEXT NOT NULL DEFAULT '',
    annotator      TEXT NOT NULL DEFAULT '',
    categories     TEXT NOT NULL DEFAULT '[]',
    severity       TEXT,
    rationale      TEXT,
    result         TEXT NOT NULL DEFAULT '[]',
    was_cancelled  INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL DEFAULT '',
    updated_at     TEXT NOT NULL DEFAULT '',
    model_version  TEXT,
    policy_version TEXT,
    deleted        INTEGER NOT NULL DEFAULT 0,
    via            TEXT NOT NULL DEFAULT '',
    recorded_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_task ON annotations (task_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    ticket_id     TEXT NOT NULL,
    text_sha      TEXT NOT NULL,
    model_version TEXT NOT NULL DEFAULT '',
    first_seen    REAL NOT NULL,
    last_seen     REAL NOT NULL,
    times         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (ticket_id, text_sha)
);
CREATE TABLE IF NOT EXISTS adjudication (
    task_id            INTEGER PRIMARY KEY,
    ticket_id          TEXT,
    payload            TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('waiting', 'sent')),
    claimed_until      REAL,
    adjudication_task  INTEGER,
    created_at         REAL NOT NULL
);
"""

# Columns added after the first release: (table, column, SQL type); existing files get them on open.
_ADDED_COLUMNS = (("queue", "usefulness", "REAL"), ("queue", "text_sha", "TEXT"),
                  ("queue", "prediction_claimed_until", "REAL"), ("queue", "reviewers", "INTEGER"),
                  ("annotations", "rejected_reason", "TEXT"), ("annotations", "escalate", "INTEGER"),
                  ("annotations", "adjudicates_task", "INTEGER"), ("queue", "auto_routed_by", "TEXT"))
# The -wal file is cut back to this after a checkpoint (a burst of big tickets must not leave it large for good).
_WAL_LIMIT_BYTES = 4 * 2**20
# Indexes on added columns, created once the columns exist.
_ADDED_INDEXES = "CREATE INDEX IF NOT EXISTS queue_useful ON queue (state, usefulness DESC, enqueued_at);"


@dataclass(frozen=True)
class QueueItem:
    """One ticket waiting for (or sent to) review, with its serialised task."""

    ticket_id: str
    payload: str
    model_version: str
    priority: float
    score: float
    attempts: int = 0
    task_id: int | None = None
    usefulness: float | None = None  # the selection strategy's score: higher is delivered first
    text_sha: str | None = None  # the ticket's identity is its id plus this hash of its text
    reviewers: int = 1  # how many reviewers the task needs (Label Studio's overlap)


@dataclass(frozen=True)
class EnqueueResult:
    """What one enqueue did: tickets new to the queue, and ids refused because they came with another text."""

    new: int = 0
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnnotationRecord:
    """One reviewer's annotation of one task, as stored (latest version; `deleted` once retracted)."""

    annotation_id: int
    task_id: int | None
    ticket_id: str | None
    text: str
    annotator: str
    categories: tuple[str, ...]
    severity: str | None
    rationale: str | None
    result: str
    created_at: str
    updated_at: str
    model_version: str | None
    policy_version: str | None
    was_cancelled: bool = False
    deleted: bool = False
    via: str = ""
    rejected_reason: str | None = None  # why the annotation is not a usable label (empty, inconsistent)
    escalate: bool = False  # the reviewer flagged the ticket for urgent handling
    adjudicates_task: int | None = None  # set on an adjudicator's answer: the review task it settles


class Outbox:
    """SQLite (WAL) queue of review items and store of annotations; safe across threads and processes."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._busy = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Ticket text lives here: owner-only (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._conn().executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            self.close()
            raise ReviewError(
                f"cannot open the review outbox {self.path.resolve()}: {err}. Make its directory writable by "
                f"this user (uid {os.getuid()}), or point TRIAGE_LABELSTUDIO__OUTBOX_PATH at a writable file, "
                "or turn review off with TRIAGE_LABELSTUDIO__ENABLED=false") from err

    def _migrate(self) -> None:
        """Add columns newer than the file (one write transaction, so concurrent openers add them once)."""
        with self._tx() as db:
            for table, column, kind in _ADDED_COLUMNS:
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            db.execute(_ADDED_INDEXES)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy / 1000, isolation_level=None,
                                   check_same_thread=False)
            # Only takes on a new file (before the first table, hence before WAL): deleted rows' pages are then
            # given back to the file system by `release_free_pages`. Older files keep and reuse their free pages.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy)}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue up instead of failing late)."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full): keep the real one
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def release_free_pages(self) -> None:
        """Give the pages of deleted rows back to the file system (files created with auto_vacuum; on older
        files SQLite reuses them for new rows instead and this does nothing)."""
        self._conn().executescript("PRAGMA incremental_vacuum")  # executescript: runs it to the end

    def vacuum(self) -> None:
        """Rewrite the file compactly; an older file is switched to incremental auto-vacuum on the way, so later
        purges give freed pages back. Writers wait while it runs (seconds for a large file)."""
        db = self._conn()
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")

    def close(self) -> None:
        """Close every connection this outbox opened."""
        with self._lock:
            for c in self._all:
                c.close()
            self._all.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------------------------------ queue

    def enqueue(self, items: Sequence[QueueItem]) -> EnqueueResult:
        """Queue items in one transaction; a known ticket is never queued twice (known: its row is still in the
        outbox; done rows are deleted after the retention period, see `triage.review.retention`).

        A ticket is its id plus the hash of its text: an id already queued with another text is a conflict,
        recorded (see `conflicts`) and left out, so one ticket's task never gets another text's prediction.
        A ticket still waiting gets the newer scores; one already sent is re-sent only as a prediction,
        and only when the model version changed.
        """
        if not items:
            return EnqueueResult()
        now = time.time()
        ids = [i.ticket_id for i in items]
        with self._tx() as db:
            known: dict[str, str | None] = {
                r[0]: r[1] for chunk in _chunks(ids, 500)
                for r in db.execute(f"SELECT ticket_id, text_sha FROM queue WHERE ticket_id IN ({_marks(chunk)})",
                                    chunk)
            }
            before = set(known)
            accepted: list[QueueItem] = []
            clashing: list[QueueItem] = []
            for i in items:
                have = known.get(i.ticket_id, i.text_sha)
                if i.ticket_id in known and have is None:
                    have = i.text_sha  # queued before texts were hashed: the first hash seen is the identity
                if have is not None and i.text_sha is not None and have != i.text_sha:
                    clashing.append(i)
                    continue
                known[i.ticket_id] = i.text_sha if have is None else have
                accepted.append(i)
            db.executemany(
                """
                INSERT INTO queue (ticket_id, payload, model_version, priority, score, usefulness, text_sha,
                                   reviewers, state, enqueued_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?)
                ON CONFLICT (ticket_id) DO UPDATE SET
                    payload = excluded.payload, priority = excluded.priority, score = excluded.score,
                    usefulness = excluded.usefulness, updated_at = excluded.updated_at,
                    text_sha = COALESCE(queue.text_sha, excluded.text_sha),
                    reviewers = CASE WHEN queue.state = 'waiting' THEN excluded.reviewers ELSE queue.reviewers END,
                    prediction_dirty = CASE WHEN queue.state = 'sent' THEN 1 ELSE 0 END,
                    model_version = excluded.model_version
                WHERE queue.state = 'waiting' OR queue.model_version != excluded.model_version
                """,
                [(i.ticket_id, i.payload, i.model_version, i.priority, i.score, i.usefulness, i.text_sha,
                  i.reviewers, now, now) for i in accepted],
            )
            if clashing:
                db.executemany(
                    """INSERT INTO conflicts (ticket_id, text_sha, model_version, first_seen, last_seen)
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id, text_sha) DO UPDATE SET
                       last_seen = excluded.last_seen, times = conflicts.times + 1""",
                    [(i.ticket_id, i.text_sha, i.model_version, now, now) for i in clashing],
                )
        new = len({i.ticket_id for i in accepted} - before)
        return EnqueueResult(new=new, conflicts=tuple(dict.fromkeys(i.ticket_id for i in clashing)))

    def withdraw(self, items: Sequence[QueueItem]) -> tuple[list[str], list[str]]:
        """Tickets a newer model routes automatically: (removed, marked). One still waiting leaves the queue
        (it never reached Label Studio); one already sent gets the new model's prediction (`payload`, scored to
        be served last) as a prediction update, and is marked `auto_routed_by` the new version. Only items
        re-scored by another model version, with the same text, are touched. Takes the write lock: callers pass
        only tickets `queued_ids` found (most auto-routed tickets were never queued)."""
        removed: list[str] = []
        marked: list[str] = []
        if not items:
            return removed, marked
        now = time.time()
        with self._tx() as db:
            for i in items:
                row = db.execute("SELECT state, model_version, text_sha FROM queue WHERE ticket_id = ?",
                                 (i.ticket_id,)).fetchone()
                if row is None or row[1] == i.model_version or (row[2] and i.text_sha and row[2] != i.text_sha):
                    continue
                if row[0] == "waiting":
                    db.execute("DELETE FROM queue WHERE ticket_id = ? AND state = 'waiting'", (i.ticket_id,))
                    removed.append(i.ticket_id)
                elif row[0] == "sent":
                    db.execute("""UPDATE queue SET payload = ?, model_version = ?, prediction_dirty = 1,
                                  auto_routed_by = ?, updated_at = ? WHERE ticket_id = ?""",
                               (i.payload, i.model_version, i.model_version, now, i.ticket_id))
                    marked.append(i.ticket_id)
        return removed, marked

    def queued_ids(self, ticket_ids: Sequence[str]) -> set[str]:
        """Which of these tickets have a row in the queue (any state); a read, no write lock."""
        return {r[0] for chunk in _chunks(list(ticket_ids), 500) for r in self._conn().execute(
            f"SELECT ticket_id FROM queue WHERE ticket_id IN ({_marks(chunk)})", chunk)}

    def states(self, ticket_ids: Sequence[str]) -> dict[str, int]:
        """How many of these tickets are waiting, sent or rejected (whoever delivered them)."""
        out: dict[str, int] = {}
        for chunk in _chunks(list(dict.fromkeys(ticket_ids)), 500):
            for state, n in self._conn().execute(
                    f"SELECT state, COUNT(*) FROM queue WHERE ticket_id IN ({_marks(chunk)}) GROUP BY state", chunk):
                out[state] = out.get(state, 0) + int(n)
        return out

    def conflicts(self) -> list[dict[str, object]]:
        """Ids that arrived with a text other than the one queued under them (never merged), newest first."""
        rows = self._conn().execute(
            """SELECT c.ticket_id, c.text_sha, q.text_sha, c.model_version, c.first_seen, c.last_seen, c.times
               FROM conflicts c LEFT JOIN queue q ON q.ticket_id = c.ticket_id ORDER BY c.last_seen DESC""").fetchall()
        return [{"ticket_id": r[0], "text_sha": r[1], "queued_text_sha": r[2], "model_version": r[3],
                 "first_seen": r[4], "last_seen": r[5], "times": r[6]} for r in rows]

    def claim(self, limit: int, lease_s: float) -> list[QueueItem]:
        """Take up to `limit` waiting items for delivery, leased so no other worker sends them.

        Most useful first (the selection strategy's score), ties oldest first; rows queued before usefulness
        existed (NULL, which SQLite sorts last when descending) come after every scored one.
        The attempt is counted before sending: an item with attempts > 1 may already be in Label Studio.
        """
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                """SELECT ticket_id, payload, model_version, priority, score, attempts, usefulness, text_sha,
                   COALESCE(reviewers, 1) FROM queue
                   WHERE state = 'waiting' AND (claimed_until IS NULL OR claimed_until < ?)
                   ORDER BY usefulness DESC, enqueued_at, rowid LIMIT ?""",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE queue SET attempts = attempts + 1, claimed_until = ? WHERE ticket_id = ?",
                [(now + lease_s, r[0]) for r in rows],
            )
        return [QueueItem(r[0], r[1], r[2], r[3], r[4], r[5] + 1, usefulness=r[6], text_sha=r[7], reviewers=r[8])
                for r in rows]

    def mark_sent(self, task_ids: Mapping[str, int]) -> None:
        """Record delivered items with their task ids."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                """UPDATE queue SET state = 'sent', task_id = ?, sent_at = ?, claimed_until = NULL,
                   last_error = NULL WHERE ticket_id = ?""",
                [(task, now, ticket) for ticket, task in task_ids.items()],
            )

    def reject(self, ticket_id: str, error: str) -> None:
        """Park an item Label Studio refuses (it stays visible in status with the reason; never retried)."""
        with self._tx() as db:
            db.execute("UPDATE queue SET state = 'rejected', claimed_until = NULL, last_error = ?, updated_at = ? "
                       "WHERE ticket_id = ? AND state = 'waiting'", (error[:1000], time.time(), ticket_id))

    def release(self, ticket_ids: Sequence[str], error: str) -> None:
        """Give claimed items back to the queue after a failed delivery."""
        with self._tx() as db:
            db.executemany(
                "UPDATE queue SET claimed_until = NULL, last_error = ? WHERE ticket_id = ? AND state = 'waiting'",
                [(error[:1000], t) for t in ticket_ids],
            )

    def prediction_updates(self, limit: int) -> list[QueueItem]:
        """Sent items re-scored by another model version, whose new prediction is still to be attached."""
        rows = self._conn().execute(
            """SELECT ticket_id, payload, model_version, priority, score, attempts, task_id, usefulness FROM queue
               WHERE state = 'sent' AND prediction_dirty = 1 LIMIT ?""",
            (limit,),
        ).fetchall()
        return [QueueItem(*r) for r in rows]

    def claim_prediction_updates(self, limit: int, lease_s: float) -> list[QueueItem]:
        """Take up to `limit` pending prediction updates, leased like deliveries: one writer per task, so two
        processes sharing this outbox (the server and `triage review push`) never attach the same prediction."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                """SELECT ticket_id, payload, model_version, priority, score, attempts, task_id, usefulness FROM queue
                   WHERE state = 'sent' AND prediction_dirty = 1
                   AND (prediction_claimed_until IS NULL OR prediction_claimed_until < ?) LIMIT ?""",
                (now, limit),
            ).fetchall()
            db.executemany("UPDATE queue SET prediction_claimed_until = ? WHERE ticket_id = ?",
                           [(now + lease_s, r[0]) for r in rows])
        return [QueueItem(*r) for r in rows]

    def clear_prediction_update(self, ticket_id: str, payload: str) -> None:
        """Mark a re-sent prediction delivered (unless the ticket was re-scored again meanwhile)."""
        with self._tx() as db:
            db.execute("UPDATE queue SET prediction_dirty = 0, prediction_claimed_until = NULL "
                       "WHERE ticket_id = ? AND payload = ?", (ticket_id, payload))

    def release_prediction_updates(self, ticket_ids: Sequence[str]) -> None:
        """Give claimed prediction updates back after a failed send."""
        with self._tx() as db:
            db.executemany("UPDATE queue SET prediction_claimed_until = NULL WHERE ticket_id = ?",
                           [(t,) for t in ticket_ids])

    def queued(self, ticket_id: str) -> QueueItem | None:
        """The queue row of a ticket, if any."""
        r = self._conn().execute(
            "SELECT ticket_id, payload, model_version, priority, score, attempts, task_id, usefulness FROM queue "
            "WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return QueueItem(*r) if r else None

    def waiting_model_versions(self) -> list[str]:
        """Model versions of items still waiting, most recently enqueued first."""
        rows = self._conn().execute(
            "SELECT model_version, MAX(updated_at) m FROM queue WHERE state = 'waiting' "
            "GROUP BY model_version ORDER BY m DESC").fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------------------------------ labels

    def record_annotation(self, rec: AnnotationRecord) -> str:
        """Insert or replace an annotation: 'created', 'updated', 'unchanged', or 'kept' (ours is newer, or it
        was deleted)."""
        now = time.time()
        with self._tx() as db:
            old = db.execute("SELECT updated_at, deleted, result FROM annotations WHERE annotation_id = ?",
                             (rec.annotation_id,)).fetchone()
            if old is not None and (old[1] or old[0] > rec.updated_at):
                return "kept"
            if old is not None and old[0] == rec.updated_at and json.loads(old[2]) == json.loads(rec.result):
                return "unchanged"
            db.execute(
                """INSERT OR REPLACE INTO annotations (annotation_id, task_id, ticket_id, text, annotator,
                   categories, severity, rationale, result, was_cancelled, created_at, updated_at, model_version,
                   policy_version, deleted, via, recorded_at, rejected_reason, escalate, adjudicates_task)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?)""",
                (rec.annotation_id, rec.task_id, rec.ticket_id, rec.text, rec.annotator,
                 json.dumps(list(rec.categories)), rec.severity, rec.rationale, rec.result,
                 int(rec.was_cancelled), rec.created_at, rec.updated_at, rec.model_version, rec.policy_version,
                 rec.via, now, rec.rejected_reason, int(rec.escalate), rec.adjudicates_task),
            )
        return "created" if old is None else "updated"

    def retract(self, annotation_ids: Sequence[int], via: str) -> int:
        """Mark annotations deleted (a tombstone for unknown ids, so a late event cannot bring them back)."""
        now = time.time()
        with self._tx() as db:
            before = db.total_changes
            for aid in annotation_ids:
                db.execute(
                    """INSERT INTO annotations (annotation_id, deleted, via, recorded_at) VALUES (?, 1, ?, ?)
                       ON CONFLICT (annotation_id) DO UPDATE SET deleted = 1, via = excluded.via,
                       recorded_at = excluded.recorded_at WHERE annotations.deleted = 0""",
                    (int(aid), via, now),
                )
            return db.total_changes - before

    def live_annotation_ids(self, task_ids: Sequence[int]) -> set[int]:
        """Ids of stored, not deleted annotations on these tasks."""
        out: set[int] = set()
        for chunk in _chunks(list(task_ids), 500):
            out.update(r[0] for r in self._conn().execute(
                f"SELECT annotation_id FROM annotations WHERE deleted = 0 AND task_id IN ({_marks(chunk)})", chunk))
        return out

    def annotations(self, include_deleted: bool = False, task_id: int | None = None) -> list[AnnotationRecord]:
        """Stored annotations (of one task, when given), oldest first."""
        clauses = ([] if include_deleted else ["deleted = 0"]) + ([] if task_id is None else ["task_id = ?"])
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._conn().execute(
            f"""SELECT annotation_id, task_id, ticket_id, text, annotator, categories, severity, rationale, result,
                created_at, updated_at, model_version, policy_version, was_cancelled, deleted, via,
                rejected_reason, escalate, adjudicates_task
                FROM annotations {where} ORDER BY updated_at, annotation_id""",
            () if task_id is None else (task_id,)).fetchall()
        return [
            AnnotationRecord(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7], r[8], r[9], r[10],
                             r[11], r[12], bool(r[13]), bool(r[14]), r[15], r[16], bool(r[17]), r[18])
            for r in rows
        ]

    # ------------------------------------------------------------------------------------------ adjudication

    def open_adjudication(self, task_id: int, ticket_id: str | None, payload: str) -> bool:
        """Queue a task whose reviewers disagree for adjudication (once; the answers shown are updated until it
        is sent); True when newly queued."""
        with self._tx() as db:
            known = db.execute("SELECT 1 FROM adjudication WHERE task_id = ?", (task_id,)).fetchone()
            db.execute("""INSERT INTO adjudication (task_id, ticket_id, payload, state, created_at)
                          VALUES (?, ?, ?, 'waiting', ?) ON CONFLICT (task_id) DO UPDATE SET payload = excluded.payload
                          WHERE adjudication.state = 'waiting'""", (task_id, ticket_id, payload, time.time()))
            return known is None

    def claim_adjudications(self, limit: int, lease_s: float) -> list[tuple[int, str]]:
        """(review task id, payload) of adjudications still to send, leased to this worker."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute("""SELECT task_id, payload FROM adjudication WHERE state = 'waiting'
                                 AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY created_at LIMIT ?""",
                              (now, limit)).fetchall()
            db.executemany("UPDATE adjudication SET claimed_until = ? WHERE task_id = ?",
                           [(now + lease_s, r[0]) for r in rows])
        return [(int(r[0]), str(r[1])) for r in rows]

    def mark_adjudication_sent(self, sent: Mapping[int, int]) -> None:
        """Record adjudication tasks created (review task id -> adjudication task id)."""
        with self._tx() as db:
            db.executemany("UPDATE adjudication SET state = 'sent', adjudication_task = ?, claimed_until = NULL "
                           "WHERE task_id = ?", [(a, t) for t, a in sent.items()])

    def release_adjudications(self, task_ids: Sequence[int]) -> None:
        """Give claimed adjudications back after a failed send."""
        with self._tx() as db:
            db.executemany("UPDATE adjudication SET claimed_until = NULL WHERE task_id = ?", [(t,) for t in task_ids])

    def adjudications(self) -> dict[int, str]:
        """State ('waiting' or 'sent') of every task sent to adjudication, by review task id."""
        return {int(r[0]): str(r[1]) for r in self._conn().execute("SELECT task_id, state FROM adjudication")}

    # ------------------------------------------------------------------------------------------ status

    def counts(self) -> dict[str, int]:
        """Queue and label counts: waiting, sent, failed attempts, annotations, deleted, labelled tasks."""
        db = self._conn()
        q = dict(db.execute("SELECT state, COUNT(*) FROM queue GROUP BY state").fetchall())
        retried = db.execute("SELECT COUNT(*) FROM queue WHERE state = 'waiting' AND attempts > 0").fetchone()[0]
        dirty = db.execute("SELECT COUNT(*) FROM queue WHERE prediction_dirty = 1").fetchone()[0]
        rejected_labels, escalated = db.execute(
            "SELECT COUNT(rejected_reason), "
            "COUNT(DISTINCT CASE WHEN escalate = 1 THEN COALESCE(ticket_id, task_id) END) "
            "FROM annotations WHERE deleted = 0 AND was_cancelled = 0").fetchone()
        adjudication = dict(db.execute("SELECT state, COUNT(*) FROM adjudication GROUP BY state").fetchall())
        conflicts = db.execute("SELECT COUNT(DISTINCT ticket_id) FROM conflicts").fetchone()[0]
        auto_routed = db.execute("SELECT COUNT(*) FROM queue WHERE auto_routed_by IS NOT NULL "
                                 "AND state = 'sent'").fetchone()[0]
        live, deleted, tasks, annotators = db.execute(
            """SELECT SUM(deleted = 0 AND was_cancelled = 0), SUM(deleted = 1),
                      COUNT(DISTINCT CASE WHEN deleted = 0 AND was_cancelled = 0 THEN task_id END),
                      COUNT(DISTINCT CASE WHEN deleted = 0 AND was_cancelled = 0 THEN annotator END)
               FROM annotations""").fetchone()
        return {
            "waiting": int(q.get("waiting", 0)),
            "sent": int(q.get("sent", 0)),
            "rejected": int(q.get("rejected", 0)),
            "waiting_retried": int(retried),
            "prediction_updates": int(dirty),
            "annotations": int(live or 0),
            "annotations_deleted": int(deleted or 0),
            "labelled_tasks": int(tasks or 0),
            "annotators": int(annotators or 0),
            "annotations_rejected": int(rejected_labels),
            "adjudication_waiting": int(adjudication.get("waiting", 0)),
            "adjudication_sent": int(adjudication.get("sent", 0)),
            "id_conflicts": int(conflicts),
            "sent_now_auto_routed": int(auto_routed),
            "escalated_tickets": int(escalated or 0),
        }

    def last_error(self) -> str | None:
        """The most recent delivery error of a waiting item."""
        r = self._conn().execute(
            "SELECT last_error FROM queue WHERE state = 'waiting' AND last_error IS NOT NULL "
            "ORDER BY updated_at DESC LIMIT 1").fetchone()
        return r[0] if r else None

    def get_meta(self, key: str) -> str | None:
        """A stored setting (e.g. the Label Studio project id)."""
        r = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _chunks(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]
