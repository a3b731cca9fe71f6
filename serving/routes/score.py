"""POST /v1/score: calibrated scores and routing decisions for a batch of tickets."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request

from serving.deps import AdmissionDep, ApiKey, BatcherDep, RecordDep, ServingDep, SettingsDep
from serving.overload import timeout_seconds
from serving.schemas import ErrorOut, ModelRef, PathOut, ResultOut, ScoreRequest, ScoreResponse, SeverityOut
from triage.scorer import validate_tickets
from triage.tickets import ScoredTicket, Ticket

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[ApiKey])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong API key."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    422: {"model": ErrorOut, "description": "Invalid tickets; `ticket_ids` names them."},
    429: {"model": ErrorOut, "description": "Too many tickets waiting for the model; retry after Retry-After."},
    503: {"model": ErrorOut, "description": "No model loaded yet, or the request deadline passed unscored."},
}
TimeoutHeader = Annotated[int | None, Header(ge=1, le=600_000, description=(
    "Deadline in milliseconds (default TRIAGE_OVERLOAD__REQUEST_TIMEOUT_MS); past it the answer is 503, unscored."))]


def to_result(item: ScoredTicket) -> ResultOut:
    """Wire form of one scored ticket."""
    d = item.decision
    return ResultOut(
        id=item.ticket.id,
        categories=dict(item.scores.categories),
        category=d.category,
        severity=SeverityOut(level=d.severity, scores=dict(item.scores.severity)),
        priority=d.priority,
        route=d.route,
        reasons=list(d.reasons),
        prediction_set=list(d.prediction_set),
        expected_precision=dict(d.expected_precision),
        model=None if item.path is None else PathOut(path=item.path),  # type: ignore[arg-type]
    )


@router.post("/score", response_model=ScoreResponse, responses=ERRORS)
async def score(body: ScoreRequest, serving: ServingDep, batcher: BatcherDep, admission: AdmissionDep,
                settings: SettingsDep, request: Request, record: RecordDep,
                x_request_timeout_ms: TimeoutHeader = None) -> ScoreResponse:
    """Score 1 to 256 tickets; results come back in request order."""
    tickets = [Ticket(t.id, t.text, t.metadata) for t in body.tickets]
    validate_tickets(tickets, serving.scorer.limits)
    with admission.admit(len(tickets)):
        used, scored = await batcher.score(
            tickets, timeout_seconds(x_request_timeout_ms, settings.overload.request_timeout_ms))
    record(scored, used.loaded.name, used.loaded.version)
    request.app.state.metrics.observe_scored(scored)
    spool = request.app.state.review_spool  # holds the tickets when the outbox fails: never a 500 for that
    if spool is not None:
        # Those routed to review are queued; with policy review.withdraw_auto_routed, queued ones this model
        # routes automatically leave, so every ticket goes (the review service sorts them).
        withdraw = request.app.state.review.policy.review.withdraw_auto_routed
        pending = scored if withdraw else [s for s in scored if s.decision.route == "review"]
        spool.enqueue(pending, used.loaded.name, used.loaded.version)
    return ScoreResponse(model=ModelRef(name=used.loaded.name, version=used.loaded.version),
                         results=[to_result(s) for s in scored])
