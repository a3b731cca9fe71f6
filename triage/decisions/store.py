"""The decision log's database: SQLite by default, any SQLAlchemy URL (PostgreSQL) for a team's own server.

The schema is migrated with Alembic (the migrations ship in this package and run on start-up). Times are naive
UTC throughout. Reads for the audit API and the reports go through here; writes come from the `Recorder`'s
background thread (decisions) and from the review service (expert labels).
"""

from __future__ import annotations

import base64
import json
import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from triage.decisions.tables import decision_log, expert_label
from triage.errors import DecisionQueryError
from triage.locks import file_lock

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MAX_PAGE = 1000


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the log stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """A datetime as naive UTC (aware ones are converted; naive ones are taken as UTC already)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp (Label Studio's, with or without Z) as naive UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        return to_utc_naive(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True)
class ExpertLabel:
    """One expert's annotation of one ticket, as the decision log keeps it."""

    annotation_id: int
    ticket_id: str | None
    annotator: str
    categories: tuple[str, ...]
    severity: str | None
    labelled_at: datetime
    via: str
    deleted: bool = False


@dataclass(frozen=True)
class Page:
    """One page of decisions, newest first, and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(decided_at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{decided_at.isoformat()}|{row_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        when, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), int(row_id)
    except (ValueError, UnicodeDecodeError) as err:
        raise DecisionQueryError(f"cursor {cursor!r} is not one this API returned") from err


def judged_correctly(model_category: str, model_severity: str, expert_categories: Sequence[str],
                     expert_severity: str | None) -> tuple[bool, bool | None]:
    """Whether the model's category and severity agree with an expert's (severity None when the expert gave none).

    The category is right when the expert named it, or when the model said `none` and the expert named nothing.
    """
    cat_ok = not expert_categories if model_category == "none" else model_category in expert_categories
    return cat_ok, (None if expert_severity is None else model_severity == expert_severity)


@dataclass(frozen=True)
class _SqliteInsert:
    """decision_log's INSERT for SQLite with positional parameters, and how each row becomes its parameters."""

    sql: str
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # a row's values in the statement's order
    json_at: tuple[int, ...]  # positions of JSON columns (stored as JSON text)
    time_at: tuple[int, ...]  # positions of DateTime columns (stored as SQLAlchemy's SQLite text)

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The statement's parameters for rows, as SQLAlchemy's SQLite types would store them."""
        times: dict[datetime, str] = {}  # a batch's rows mostly share their decision time
        out = []
        for r in rows:
            v = list(self.values(r))
            for i in self.json_at:
                if v[i] is not None:
                    v[i] = json.dumps(v[i])
            for i in self.time_at:
                t = v[i]
                if t is not None:
                    if t not in times:
                        times[t] = t.strftime("%Y-%m-%d %H:%M:%S.%f")
                    v[i] = times[t]
            out.append(tuple(v))
        return out


@lru_cache(maxsize=8)
def _sqlite_insert(columns: tuple[str, ...]) -> _SqliteInsert:
    """decision_log's INSERT for SQLite over `columns` (compiled once per column set)."""
    from sqlalchemy.dialects import sqlite

    compiled = decision_log.insert().compile(dialect=sqlite.dialect(), column_keys=list(columns))
    order = tuple(compiled.positiontup or ())
    getter = operator.itemgetter(*order)
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
        getter if len(order) > 1 else lambda r: (getter(r),))
    types = [decision_log.c[name].type for name in order]
    return _SqliteInsert(str(compiled), values,
                         tuple(i for i, t in enumerate(types) if isinstance(t, sa.JSON)),
                         tuple(i for i, t in enumerate(types) if isinstance(t, sa.DateTime)))


class DecisionStore:
    """Reads and writes of the decision log over one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def shareable(self) -> bool:
        """Whether another process can open this database (not an in-memory SQLite one)."""
        return not (self.dialect == "sqlite" and sa.engine.make_url(self.url).database in (None, "", ":memory:"))

    @property
    def dialect(self) -> str:
        """The database's dialect name (`sqlite`, `postgresql`, ...)."""
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe to run at every start)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        # Several server processes (`triage serve --workers N`, Ray replicas) start at once: one migrates, the
        # others wait and then find the schema at head.
        with self._migration_lock(), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7246010)"))  # held until this transaction ends
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _migration_lock(self) -> AbstractContextManager[None]:
        """An exclusive file lock beside a SQLite database file (no lock for other databases)."""
        path = sa.engine.make_url(self.url).database if self.dialect == "sqlite" else None
        return file_lock(f"{path}.migrate.lock" if path and path != ":memory:" else None)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------------------ decisions

    def insert_decisions(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write decision rows (dicts keyed by decision_log's columns, all with the same keys) in one transaction."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                # The log's hot path: SQLAlchemy's per-row type processing held the GIL for about a quarter of a
                # request's CPU; plain tuples through the driver leave the work to SQLite, which releases the GIL.
                insert = _sqlite_insert(tuple(rows[0]))
                conn.exec_driver_sql(insert.sql, insert.params(rows))
            else:
                conn.execute(decision_log.insert(), list(rows))
        return len(rows)

    def for_ticket(self, ticket_id: str) -> list[dict[str, Any]]:
        """Every decision on `ticket_id`, newest first, each with the live expert labels joined to it."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decision_log).where(decision_log.c.ticket_id == ticket_id)
                                .order_by(decision_log.c.decided_at.desc(), decision_log.c.id.desc())).mappings()
            decisions = [dict(r) for r in rows]
            labels = conn.execute(sa.select(expert_label).where(expert_label.c.ticket_id == ticket_id,
                                                                expert_label.c.deleted.is_(False))
                                  .order_by(expert_label.c.labelled_at)).mappings().all()
        by_decision: dict[int | None, list[dict[str, Any]]] = {}
        for lab in labels:
            by_decision.setdefault(lab["decision_id"], []).append(dict(lab))
        for d in decisions:
            d["labels"] = by_decision.get(d["id"], [])
        if decisions and None in by_decision:  # labels not yet joined: shown on the newest decision
            decisions[0]["labels"] += by_decision[None]
        return decisions

    def page(self, since: datetime | None = None, until: datetime | None = None, category: str | None = None,
             route: str | None = None, limit: int = 100, cursor: str | None = None) -> Page:
        """Decisions in [since, until), optionally of one category and route, newest first, `limit` per page."""
        if not 1 <= limit <= MAX_PAGE:
            raise DecisionQueryError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        if since is not None and until is not None and since >= until:
            raise DecisionQueryError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
        c = decision_log.c
        q = sa.select(decision_log)
        if since is not None:
            q = q.where(c.decided_at >= since)
        if until is not None:
            q = q.where(c.decided_at < until)
        if category is not None:
            q = q.where(c.category == category)
        if route is not None:
            q = q.where(c.route == route)
        if cursor is not None:
            at, row_id = _decode_cursor(cursor)
            q = q.where(sa.or_(c.decided_at < at, sa.and_(c.decided_at == at, c.id < row_id)))
        q = q.order_by(c.decided_at.desc(), c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _encode_cursor(rows[-1]["decided_at"], rows[-1]["id"]) if more and rows else None
        return Page(rows, nxt)

    def count(self) -> int:
        """How many decisions the log holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decision_log)).scalar_one())

    def purge_texts(self, retention: timedelta, now: datetime | None = None) -> int:
        """Delete the stored texts of decisions older than `retention` (the rest of each row stays)."""
        cutoff = (now or utcnow()) - retention
        with self.engine.begin() as conn:
            result = conn.execute(decision_log.update().where(decision_log.c.decided_at < cutoff,
                                                              decision_log.c.text.is_not(None)).values(text=None))
        return int(result.rowcount or 0)

    # ------------------------------------------------------------------------------------------ expert labels

    def record_label(self, label: ExpertLabel, received_at: datetime | None = None) -> None:
        """Store (or update) one expert annotation and join it to the decision it judged, when that is logged."""
        values = {"ticket_id": label.ticket_id, "annotator": label.annotator, "categories": list(label.categories),
                  "severity": label.severity, "labelled_at": label.labelled_at, "via": label.via,
                  "deleted": label.deleted, "received_at": received_at or utcnow(), "decision_id": None,
                  "category_correct": None, "severity_correct": None, "wait_seconds": None}
        with self.engine.begin() as conn:
            values.update(self._judgement(conn, label.ticket_id, label.labelled_at, label.categories, label.severity))
            done = conn.execute(expert_label.update().where(expert_label.c.annotation_id == label.annotation_id)
                                .values(**values)).rowcount
            if not done:
                conn.execute(expert_label.insert().values(annotation_id=label.annotation_id, **values))

    def record_labels(self, labels: Iterable[ExpertLabel]) -> int:
        """Store many annotations; returns how many."""
        n = 0
        for label in labels:
            self.record_label(label)
            n += 1
        return n

    def retract_labels(self, annotation_ids: Sequence[int]) -> int:
        """Mark annotations deleted in the labeling tool as deleted here too."""
        if not annotation_ids:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(expert_label.update().where(expert_label.c.annotation_id.in_(list(annotation_ids)))
                                  .values(deleted=True))
        return int(result.rowcount or 0)

    def join_pending_labels(self) -> int:
        """Join labels that arrived before their decision was written; returns how many were joined now."""
        joined = 0
        with self.engine.begin() as conn:
            pending = conn.execute(sa.select(expert_label).where(expert_label.c.decision_id.is_(None),
                                                                 expert_label.c.ticket_id.is_not(None))).mappings()
            for lab in list(pending):
                values = self._judgement(conn, lab["ticket_id"], lab["labelled_at"], lab["categories"],
                                         lab["severity"])
                if values.get("decision_id") is not None:
                    conn.execute(expert_label.update()
                                 .where(expert_label.c.annotation_id == lab["annotation_id"]).values(**values))
                    joined += 1
        return joined

    @staticmethod
    def _judgement(conn: sa.Connection, ticket_id: str | None, labelled_at: datetime, categories: Sequence[str],
                   severity: str | None) -> dict[str, Any]:
        """The decision a label judged (the newest one on that ticket made before the label) and the verdict."""
        if ticket_id is None:
            return {}
        c = decision_log.c
        base = sa.select(c.id, c.decided_at, c.category, c.severity).where(c.ticket_id == ticket_id)
        row = conn.execute(base.where(c.decided_at <= labelled_at)
                           .order_by(c.decided_at.desc(), c.id.desc()).limit(1)).first()
        if row is None:
            return {}
        cat_ok, sev_ok = judged_correctly(row.category, row.severity, list(categories), severity)
        return {"decision_id": row.id, "category_correct": cat_ok, "severity_correct": sev_ok,
                "wait_seconds": max(0.0, (labelled_at - row.decided_at).total_seconds())}

    # ------------------------------------------------------------------------------------------ analysis reads

    def decisions_between(self, since: datetime | None, until: datetime | None,
                          columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Decision rows in [since, until) for reports (all columns but the text unless asked for)."""
        names = columns or [col.name for col in decision_log.c if col.name != "text"]
        q = sa.select(*[decision_log.c[n] for n in names])
        if since is not None:
            q = q.where(decision_log.c.decided_at >= since)
        if until is not None:
            q = q.where(decision_log.c.decided_at < until)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(decision_log.c.id)).mappings()]

    def labels_for(self, decision_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Live expert labels joined to decisions (all, or those of `decision_ids`)."""
        q = sa.select(expert_label).where(expert_label.c.deleted.is_(False), expert_label.c.decision_id.is_not(None))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q.order_by(expert_label.c.annotation_id)).mappings()]
        if decision_ids is not None:
            keep = set(decision_ids)
            rows = [r for r in rows if r["decision_id"] in keep]
        return rows


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def dumps(value: Any) -> str:
    """JSON for CSV cells."""
    return json.dumps(value, sort_keys=True)
