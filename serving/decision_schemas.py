"""Wire schemas of the audit API (GET /v1/decisions...) and the drift API (GET /v1/drift)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# The log stores naive UTC; answers carry the offset, so each is an RFC 3339 date-time as the schema says.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class ExpertLabelOut(BaseModel):
    """One expert's label on a decided ticket, and what it says of the decision."""

    annotation_id: int
    annotator: str
    categories: list[str]
    severity: str | None
    labelled_at: UtcDatetime
    via: str
    category_correct: bool | None = Field(description="the model's category agreed with this expert")
    severity_correct: bool | None
    wait_seconds: float | None = Field(description="time from the decision to this label")


class DecisionOut(BaseModel):
    """One recorded decision: what was decided, by which model and policy, for which API key."""

    id: int
    ticket_id: str
    decided_at: UtcDatetime
    model_name: str
    model_version: str
    policy_version: str
    category: str
    severity: str
    priority: float
    route: str
    confidence: float
    categories: dict[str, float]
    severity_scores: dict[str, float]
    reasons: list[str]
    prediction_set: list[str]
    api_key_id: str | None
    text_sha256: str
    text_length: int
    text: str | None = Field(description="only when TRIAGE_DECISIONS__STORE_TEXT is on, and within retention")
    source: str | None
    audit_sample: bool
    labels: list[ExpertLabelOut] = Field(default_factory=list)


class TicketDecisionsOut(BaseModel):
    """Every decision on one ticket, newest first, with the expert labels each received."""

    ticket_id: str
    decisions: list[DecisionOut]


class DecisionPageOut(BaseModel):
    """One page of decisions, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[DecisionOut]
    next_cursor: str | None


class DriftOut(BaseModel):
    """Recent inputs and scores compared with the training data's."""

    since: UtcDatetime
    until: UtcDatetime
    decisions: int
    drifted: bool
    features: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    notes: list[str]


def decision_out(row: dict[str, Any]) -> DecisionOut:
    """A decision_log row (with its `labels`) on the wire."""
    fields = {k: v for k, v in row.items() if k not in ("category_scores", "labels", "script")}
    labels = [ExpertLabelOut(**{k: lab[k] for k in ExpertLabelOut.model_fields}) for lab in row.get("labels", [])]
    return DecisionOut(**fields, categories=row["category_scores"], labels=labels)
