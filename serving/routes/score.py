"""POST /v1/score: calibrated scores and routing decisions for a batch of tickets."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from serving.deps import ApiKey, BatcherDep, RecordDep, ServingDep
from serving.schemas import ErrorOut, ModelRef, ResultOut, ScoreRequest, ScoreResponse, SeverityOut
from triage.scorer import validate_tickets
from triage.tickets import ScoredTicket, Ticket

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[ApiKey])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong API key."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    422: {"model": ErrorOut, "description": "Invalid tickets; `ticket_ids` names them."},
    503: {"model": ErrorOut, "description": "No model loaded yet."},
}


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
    )


@router.post("/score", response_model=ScoreResponse, responses=ERRORS)
async def score(body: ScoreRequest, serving: ServingDep, batcher: BatcherDep, request: Request,
                record: RecordDep) -> ScoreResponse:
    """Score 1 to 256 tickets; results come back in request order."""
    tickets = [Ticket(t.id, t.text, t.metadata) for t in body.tickets]
    validate_tickets(tickets, serving.scorer.limits)
    used, scored = await batcher.score(tickets)
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
