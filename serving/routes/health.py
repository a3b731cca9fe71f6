"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from serving.deps import SlotDep
from serving.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(slot: SlotDep, response: Response) -> Health:
    """A model is loaded and requests can be scored."""
    current = slot.current
    if current is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", detail=slot.last_error or "no model loaded yet")
    return Health(status="ok", detail=f"{current.loaded.name} version {current.loaded.version}")
