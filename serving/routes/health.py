"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from serving.deps import SlotDep
from serving.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(slot: SlotDep, response: Response, request: Request) -> Health:
    """A model is loaded and requests can be scored; 'degraded' (still 200) when the review outbox fails."""
    current = slot.current
    if current is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", detail=slot.last_error or "no model loaded yet")
    detail = f"{current.loaded.name} version {current.loaded.version}"
    spool = getattr(request.app.state, "review_spool", None)
    if spool is not None and spool.degraded:
        stats = spool.stats()
        return Health(status="degraded", detail=f"{detail}; review outbox failing ({stats.last_error or 'retrying'}): "
                                                f"{stats.pending} review ticket(s) held in memory, "
                                                f"{stats.dropped} dropped")
    return Health(status="ok", detail=detail)
