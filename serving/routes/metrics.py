"""GET /metrics: Prometheus exposition (needs an API key when keys are set; Prometheus sends it as a bearer)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import ApiKey
from serving.metrics import CONTENT_TYPE
from serving.schemas import ErrorOut

router = APIRouter(tags=["operations"], dependencies=[ApiKey])


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."},
    401: {"model": ErrorOut, "description": "Missing or wrong API key."},
})
def metrics(request: Request) -> Response:
    """Requests, latency, scored tickets by route and category, review outbox depth and failures, model version."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
