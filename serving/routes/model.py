"""GET /v1/model: which model is serving, for which policy, and how it did on its test split."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import ApiKey, PolicyDep, ServingDep
from serving.schemas import ErrorOut, ModelInfo
from triage.models.base import ModelCard
from triage.models.examples import head_status

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[ApiKey])


def components(card: ModelCard) -> list[str]:
    """What the model is built from: a combined model's two stacked views, else its kind alone."""
    if card.kind == "combined":
        return ["ngrams", str(card.extra.get("second_view", "encoder"))]
    return [card.kind]


@router.get("/model", response_model=ModelInfo, responses={401: {"model": ErrorOut}, 503: {"model": ErrorOut}})
def model_info(serving: ServingDep, policy: PolicyDep) -> ModelInfo:
    """Name, version, kind, policy and test metrics of the model in service."""
    loaded = serving.loaded
    card = loaded.classifier.card
    metrics = {k.removeprefix("test."): v for k, v in loaded.metrics.items() if "." not in k.removeprefix("test.")}
    return ModelInfo(
        name=loaded.name,
        version=loaded.version,
        kind=card.kind,
        components=components(card),
        policy_name=policy.name,
        policy_version=policy.version,
        trained_policy_version=card.policy_version,
        categories=list(card.categories),
        untrained_categories=[c for c in policy.category_names if c not in card.categories],
        severity_levels=list(card.severity_levels),
        thresholds=dict(card.thresholds),
        metrics=metrics or dict(card.metrics),
        loaded_at=serving.loaded_at,
        example_heads=head_status(card),
        expected_full_share=(card.extra.get("cascade") or {}).get("expected_full_share"),
        promises_not_kept=serving.scorer.promises_not_kept(),
    )
