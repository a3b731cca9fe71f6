"""GET /v1/decisions...: the audit trail of every scored ticket (same API-key rules as scoring)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BeforeValidator

from serving.decision_schemas import DecisionPageOut, DriftOut, TicketDecisionsOut, decision_out
from serving.deps import ApiKey, DecisionLogDep, PolicyDep, ServingDep, SettingsDep
from serving.schemas import ErrorOut
from triage.decisions.drift import (
    DriftReference,
    cached_reference,
    compare,
    recent_rows,
    reference_path,
    training_sample,
)
from triage.decisions.store import MAX_PAGE, to_utc_naive, utcnow
from triage.errors import DecisionQueryError

router = APIRouter(prefix="/v1", tags=["decisions"], dependencies=[ApiKey])


def _iso_only(value: object) -> object:
    """A date-time as the schema says: an ISO-8601 string, not a number read as a Unix time."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("expected an ISO-8601 date-time (e.g. 2026-11-30T09:00:00Z), not a number")
    return value


IsoTime = BeforeValidator(_iso_only)
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong API key."},
    404: {"model": ErrorOut, "description": "No decision on record for this ticket."},
    422: {"model": ErrorOut, "description": "Bad dates, unknown category or route, limit out of range, bad cursor."},
    503: {"model": ErrorOut, "description": "The decision log is turned off."},
}


@router.get("/decisions/{ticket_id}", response_model=TicketDecisionsOut, responses=ERRORS)
def ticket_decisions(ticket_id: str, log: DecisionLogDep) -> TicketDecisionsOut:
    """Every decision on a ticket, newest first, with the expert labels it received."""
    log.recorder.flush()  # what was scored a moment ago is on record before we answer
    rows = log.store.for_ticket(ticket_id)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no decision on record for ticket {ticket_id!r}")
    return TicketDecisionsOut(ticket_id=ticket_id, decisions=[decision_out(r) for r in rows])


@router.get("/decisions", response_model=DecisionPageOut, responses=ERRORS)
def list_decisions(
    log: DecisionLogDep,
    policy: PolicyDep,
    since: Annotated[datetime | None, IsoTime, Query(description="ISO-8601; inclusive (UTC when no offset)")] = None,
    until: Annotated[datetime | None, IsoTime, Query(description="ISO-8601; exclusive")] = None,
    category: Annotated[str | None, Query(description="a policy category, or `none`")] = None,
    route: Annotated[Literal["auto", "review"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> DecisionPageOut:
    """Decisions in a period, newest first, one page at a time."""
    known = [*policy.category_names, "none"]
    if category is not None and category not in known:
        raise DecisionQueryError(f"unknown category {category!r}; one of: {', '.join(known)}")
    log.recorder.flush()
    page = log.store.page(since=None if since is None else to_utc_naive(since),
                          until=None if until is None else to_utc_naive(until),
                          category=category, route=route, limit=limit, cursor=cursor)
    return DecisionPageOut(items=[decision_out({**r, "labels": []}) for r in page.items], next_cursor=page.next_cursor)


_reference_lock = threading.Lock()


@router.get("/drift", response_model=DriftOut, responses=ERRORS)
def drift(
    log: DecisionLogDep,
    serving: ServingDep,
    settings: SettingsDep,
    since: Annotated[datetime | None, IsoTime, Query(description="ISO-8601; default: 7 days before until")] = None,
    until: Annotated[datetime | None, IsoTime, Query(description="ISO-8601; default: now")] = None,
) -> DriftOut:
    """Recent score, text-length and script mix vs the training data (PSI), and far clusters of review tickets.

    The first call for a model version scores a sample of its training texts (seconds to a minute) and caches it.
    """
    end = to_utc_naive(until) if until else utcnow()
    start = to_utc_naive(since) if since else end - timedelta(days=7)
    if start >= end:
        raise DecisionQueryError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    loaded = serving.loaded
    with _reference_lock:
        ref = cached_reference(settings.home, loaded.name, loaded.version)
        if ref is None:
            texts = training_sample(settings.datasets_dir)
            clf = loaded.classifier
            ref = DriftReference.build(f"{loaded.name}/{loaded.version}", clf.card.categories, texts,
                                       clf.predict(texts).categories)
            ref.save(reference_path(settings.home, loaded.name, loaded.version))
    log.recorder.flush()
    rows = [r for r in recent_rows(log.store, start, end)
            if (r["model_name"], r["model_version"]) == (loaded.name, loaded.version)]
    result = compare(ref, rows)
    return DriftOut(since=start, until=end, decisions=result.decisions, drifted=result.drifted,
                    features=result.features, clusters=result.clusters, notes=result.notes)
