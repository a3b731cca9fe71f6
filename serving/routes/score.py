"""POST /v1/score: calibrated scores and routing decisions for a batch of tickets."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from serving.deps import ApiKey, ScoreContextDep
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


def to_result(item: ScoredTicket) -> ResultOut:
    """Wire form of one scored ticket. Built without validation (`model_construct`): every field comes from the
    scorer's typed decision, and validating them again cost a single-ticket request a few percent of its
    throughput; the API tests check every answer against the published schema."""
    d = item.decision
    return ResultOut.model_construct(
        id=item.ticket.id,
        categories=dict(item.scores.categories),
        category=d.category,
        severity=SeverityOut.model_construct(level=d.severity, scores=dict(item.scores.severity)),
        priority=float(d.priority),
        route=d.route,
        reasons=list(d.reasons),
        prediction_set=list(d.prediction_set),
        expected_precision=dict(d.expected_precision),
        model=None if item.path is None else PathOut.model_construct(path=item.path),
    )


@router.post("/score", response_model=ScoreResponse, responses=ERRORS)
async def score(body: ScoreRequest, ctx: ScoreContextDep) -> ScoreResponse:
    """Score 1 to 256 tickets; results come back in request order."""
    tickets = [Ticket(t.id, t.text, t.metadata) for t in body.tickets]
    validate_tickets(tickets, ctx.serving.scorer.limits)
    with ctx.admission.admit(len(tickets)):
        used, scored = await ctx.batcher.score(tickets, ctx.timeout_s)
    ctx.record(scored, used.loaded.name, used.loaded.version)  # queued: written in batches by its own thread
    ctx.metrics.observe_scored(scored)
    return ScoreResponse.model_construct(model=ModelRef.model_construct(name=used.loaded.name,
                                                                         version=used.loaded.version),
                                         results=[to_result(s) for s in scored])
