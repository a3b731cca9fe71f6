"""Label Studio's ML-backend protocol under /ml, so tasks imported by hand in Label Studio get predictions too.

Label Studio calls GET /health, POST /setup, POST /predict, POST /webhook and GET /versions on a connected
model server. Annotation events reach the label store through the authenticated /v1/review/webhook only:
/ml/webhook acknowledges and ignores them (Label Studio adds it without a secret).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field, StrictInt, StrictStr

from serving.deps import ApiKey, BatcherDep, PolicyDep, ServingDep, SlotDep
from serving.schemas import ErrorOut, LabelStudioBody
from serving.validation import check_text, printable, surrogate_problem
from triage.review.annotations import prediction_result
from triage.review.labeling_config import CATEGORY, SEVERITY, TEXT
from triage.tickets import Ticket

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ml", tags=["label studio ml backend"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Body not readable as UTF-8 JSON."},
    401: {"model": ErrorOut, "description": "Missing or wrong API key (Label Studio: basic auth, key as password)."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    422: {"model": ErrorOut, "description": "Not a JSON object, or strings that are not valid Unicode."},
    503: {"model": ErrorOut, "description": "No model loaded yet."},
}


class MLHealth(BaseModel):
    """Liveness as Label Studio expects it."""

    status: str
    model_class: str = "triage"
    model_version: str | None = None


class SetupOut(BaseModel):
    """Answer to /setup: the version whose predictions Label Studio should show."""

    model_version: str


class PredictIn(LabelStudioBody):
    """Label Studio's /predict body (only `tasks` is needed)."""

    tasks: list[dict[str, Any]] = Field(default_factory=list)
    project: StrictStr | StrictInt | None = None
    label_config: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class TaskPrediction(BaseModel):
    """One task's pre-annotation: `score` is the model's confidence."""

    result: list[dict[str, Any]]
    score: float
    model_version: str


class PredictOut(BaseModel):
    """One prediction per task, in the order of the request."""

    results: list[TaskPrediction]


class VersionsOut(BaseModel):
    """Model versions this backend can serve."""

    versions: list[str]


def _text(task: dict[str, Any]) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        return ""
    value = data.get(TEXT)
    return value if isinstance(value, str) else ""


@router.get("/health", response_model=MLHealth)
def ml_health(slot: SlotDep) -> MLHealth:
    """Always UP while the process runs; names the model version when one is loaded."""
    current = slot.current
    return MLHealth(status="UP", model_version=current.loaded.version if current else None)


@router.post("/setup", response_model=SetupOut, dependencies=[ApiKey], responses=ERRORS)
def ml_setup(serving: ServingDep, body: Annotated[LabelStudioBody, Body()]) -> SetupOut:
    """Label Studio connects: answer with the served model version."""
    log.info("Label Studio ML backend setup for project %s", printable(str(getattr(body, "project", None))[:64]))
    return SetupOut(model_version=serving.loaded.version)


@router.post("/predict", response_model=PredictOut, dependencies=[ApiKey], responses={
    **ERRORS,
    409: {"model": ErrorOut, "description": "The project's labeling config lacks our controls."},
    422: {"model": ErrorOut, "description": "A task without clean text, or over the limits."},
})
async def ml_predict(body: PredictIn, serving: ServingDep, batcher: BatcherDep, policy: PolicyDep) -> PredictOut:
    """Predictions for Label Studio tasks (their `data.text`), in order, scored by the served model."""
    if body.label_config and not all(f'name="{n}"' in body.label_config for n in (CATEGORY, SEVERITY, TEXT)):
        # A well-formed request whose project conflicts with this backend: 409, not a validation error.
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"the project's labeling config has no '{CATEGORY}'/'{SEVERITY}' choices on "
                                   f"'{TEXT}': generate it from the policy (triage review push)")
    bad = [(i, reason) for i, t in enumerate(body.tasks) if (reason := surrogate_problem(_text(t)))]
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"{len(bad)} task(s) have a data.{TEXT} that is not valid Unicode: "
                                   + "; ".join(f"tasks.{i}: {r}" for i, r in bad[:20]))
    texts = [check_text(_text(t)) for t in body.tasks]  # control characters read as spaces, as on /v1
    empty = [str(t.get("id", i)) for i, (t, text) in enumerate(zip(body.tasks, texts, strict=True))
             if not text.strip()]
    if empty:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"{len(empty)} task(s) have no data.{TEXT}: {', '.join(x[:64] for x in empty[:20])}")
    limits = serving.scorer.limits
    if len(body.tasks) > limits.max_tickets:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"{len(body.tasks)} tasks sent, over the limit of {limits.max_tickets} per request")
    long = [str(t.get("id", i)) for i, (t, text) in enumerate(zip(body.tasks, texts, strict=True))
            if len(text) > limits.max_text_chars]
    if long:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"{len(long)} task(s) are over the {limits.max_text_chars:,}-character limit: "
                                   f"{', '.join(x[:64] for x in long[:20])}")
    tickets = [Ticket(id=f"ls-task-{i}", text=text) for i, text in enumerate(texts)]
    results: list[TaskPrediction] = []
    for start in range(0, len(tickets), limits.max_tickets):
        used, scored = await batcher.score(tickets[start:start + limits.max_tickets])
        results.extend(
            TaskPrediction(result=prediction_result(s, policy),
                           score=float(s.decision.confidence), model_version=used.loaded.version)
            for s in scored
        )
    return PredictOut(results=results)


@router.post("/webhook", dependencies=[ApiKey], responses=ERRORS)
def ml_webhook(body: Annotated[LabelStudioBody, Body()]) -> dict[str, str]:
    """Acknowledge Label Studio's ML-backend events; labels are recorded by /v1/review/webhook instead."""
    return {"status": "ignored", "action": str(getattr(body, "action", ""))[:64]}


@router.get("/versions", response_model=VersionsOut, dependencies=[ApiKey], responses=ERRORS)
def ml_versions(slot: SlotDep) -> VersionsOut:
    """The served model version (the only one this backend predicts with)."""
    current = slot.current
    return VersionsOut(versions=[current.loaded.version] if current else [])
