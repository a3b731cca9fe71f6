"""Wire schemas of the scoring API (v1); domain types live in triage/."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serving import validation


class TicketIn(BaseModel):
    """One ticket to score."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256,
                    description="The ticket system's id; unique within a request; no control characters.")
    text: str = Field(description="The reported content. Not empty; at most TRIAGE_SERVING__MAX_TEXT_CHARS characters; "
                      "valid Unicode (no lone surrogates); control characters but tab and newlines are read as spaces.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Passed through to the review queue: at most {validation.METADATA_MAX_KEYS} keys, "
        f"{validation.METADATA_MAX_DEPTH} levels and {validation.METADATA_MAX_BYTES:,} bytes as JSON.")

    @field_validator("id", mode="before")
    @classmethod
    def _clean_id(cls, value: object) -> object:
        return validation.check_id(value) if isinstance(value, str) else value

    @field_validator("text", mode="before")
    @classmethod
    def _clean_text(cls, value: object) -> object:
        return validation.check_text(value) if isinstance(value, str) else value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return validation.check_metadata(value)


class ScoreRequest(BaseModel):
    """A batch of 1 to 256 tickets."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tickets": [{"id": "T-1", "text": "you will regret this", "metadata": {}}]}]},
    )

    tickets: list[TicketIn]


class ModelRef(BaseModel):
    """Which registered model produced the scores."""

    name: str
    version: str


class SeverityOut(BaseModel):
    """The most likely severity level and the probability of every level."""

    level: str
    scores: dict[str, float]


class PathOut(BaseModel):
    """Which model of a cascade scored a ticket."""

    path: Literal["fast", "full"] = Field(description="fast = the cheap model alone; full = the full model.")


class ResultOut(BaseModel):
    """Scores and routing decision for one ticket."""

    id: str
    categories: dict[str, float] = Field(description="Calibrated probability per policy category.")
    category: str = Field(description="Top category over its decision threshold, or 'none'.")
    severity: SeverityOut
    priority: float = Field(ge=0.0, le=1.0, description="Higher = handle sooner.")
    route: Literal["auto", "review"]
    reasons: list[str]
    prediction_set: list[str] = Field(
        default_factory=list, description="Categories asserted within their validated precision guarantee.")
    expected_precision: dict[str, float] = Field(
        default_factory=dict, description="Validation precision at each asserted category's operating point.")
    model: PathOut | None = Field(default=None, description="Set when a cascade serves: which path scored it.")


class ScoreResponse(BaseModel):
    """Results in request order."""

    model: ModelRef
    results: list[ResultOut]


class ModelInfo(BaseModel):
    """What the serving model is, which policy it follows, and how it scored on its test split."""

    name: str
    version: str
    kind: str
    components: list[str] = Field(
        default_factory=list,
        description="What the model is built from: for `combined`, its stacked views ('ngrams' and 'transformer' or "
                    "'encoder'); otherwise the kind alone.")
    policy_name: str
    policy_version: str
    trained_policy_version: str
    categories: list[str]
    untrained_categories: list[str] = Field(description="Policy categories this model has no training data for.")
    severity_levels: list[str]
    thresholds: dict[str, float]
    metrics: dict[str, float]
    loaded_at: str
    example_heads: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Categories without a fully trained head and what each runs on: `runs_on` is 'examples' "
                    "(similarity to the policy's seed examples) or 'light_head' (fitted on expert labels); "
                    "`always_review` when its positives are always sent to a person.")
    expected_full_share: float | None = Field(
        default=None, description="Cascade only: share of validation tickets the full model scored.")
    promises_not_kept: dict[str, str] = Field(
        default_factory=dict,
        description="Routing promises the model was fitted for more loosely than the policy now asks (the policy "
                    "was tightened after training), per category or `severity>=high`, and what the service does "
                    "instead until the model is trained again (reviews what the loose point would let through).")


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "degraded", "unavailable"]
    detail: str = ""


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: what went wrong, and which tickets or fields."""

    error: str
    message: str
    ticket_ids: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)


class LabelStudioBody(BaseModel):
    """A JSON object from Label Studio: any fields, but valid Unicode, no control characters, bounded depth."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        reason = validation.json_problem(value)
        if reason:
            raise ValueError(reason)
        return value
