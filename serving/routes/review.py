"""The review queue over HTTP: Label Studio's webhook receiver (shared secret) and the queue's status."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from serving.deps import ApiKey
from serving.schemas import ErrorOut, LabelStudioBody
from triage.errors import WebhookPayloadError
from triage.review.service import ReviewService

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/review", tags=["review"])


class WebhookAck(BaseModel):
    """What the receiver did with one event."""

    action: str
    outcome: str


class ReviewStatus(BaseModel):
    """Review queue counts, reviewer agreement and sync health."""

    waiting: int
    sent: int
    rejected: int
    waiting_retried: int
    prediction_updates: int
    annotations: int
    annotations_deleted: int
    labelled_tasks: int
    annotators: int
    agreement: dict[str, Any] = Field(description="Agreement on tasks labelled by two or more reviewers.")
    project_id: int | None
    label_studio_url: str
    model_version: str | None
    policy_version: str
    sync_running: bool
    last_sync_ok_at: float | None
    last_error: str | None
    annotations_rejected: int = Field(0, description="Empty or inconsistent annotations, kept with their reason.")
    adjudication_waiting: int = Field(0, description="Tasks whose reviewers disagree, not yet sent to adjudication.")
    adjudication_sent: int = Field(0, description="Tasks in the adjudication project.")
    id_conflicts: int = Field(0, description="Ids that arrived with another text than the one queued (refused).")
    sent_now_auto_routed: int = Field(0, description="Tasks in Label Studio the current model routes automatically.")
    escalated_tickets: int = Field(0, description="Tickets a reviewer marked for urgent handling.")


def get_review(request: Request) -> ReviewService:
    """The app's review service; 503 when review is disabled (TRIAGE_LABELSTUDIO__ENABLED=false)."""
    review: ReviewService | None = getattr(request.app.state, "review", None)
    if review is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="the review queue is disabled (TRIAGE_LABELSTUDIO__ENABLED=false)")
    return review


ReviewDep = Annotated[ReviewService, Depends(get_review)]


def require_webhook_secret(review: ReviewDep, request: Request) -> None:
    """401 unless the shared secret is given in the configured header (never in the URL, where logs keep it)."""
    name = review.settings.webhook_header
    given = request.headers.get(name)
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail=f"missing webhook secret: send it in the {name} header")
    expected = review.settings.webhook_secret.get_secret_value()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong webhook secret")


@router.post("/webhook", response_model=WebhookAck, dependencies=[Depends(require_webhook_secret)], responses={
    400: {"model": ErrorOut, "description": "Not a Label Studio annotation event."},
    401: {"model": ErrorOut, "description": "Missing or wrong shared secret."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    422: {"model": ErrorOut, "description": "Not a JSON object, or strings that are not valid Unicode."},
    503: {"model": ErrorOut, "description": "Review queue disabled."},
})
def webhook(
    review: ReviewDep,
    body: Annotated[LabelStudioBody, Body()],
) -> WebhookAck:
    """Record one annotation event from Label Studio (created, updated, deleted). Only records; never trains.

    The shared secret comes in the header named by TRIAGE_LABELSTUDIO__WEBHOOK_HEADER
    (default X-Triage-Webhook-Secret); a secret in the query string is not accepted.
    """
    payload: dict[str, Any] = body.model_dump()
    try:
        outcome = review.record_webhook(payload)
    except WebhookPayloadError as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(err)) from err
    action = str(payload.get("action"))
    log.info("webhook %s: %s", action, outcome)
    return WebhookAck(action=action, outcome=outcome)


@router.get("/status", response_model=ReviewStatus, dependencies=[ApiKey])
def review_status(review: ReviewDep) -> ReviewStatus:
    """Counts: waiting, sent, labelled; reviewer agreement; whether Label Studio is reachable."""
    return ReviewStatus(**review.status())
