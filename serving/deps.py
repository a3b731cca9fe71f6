"""FastAPI dependencies as Annotated aliases: settings, the served model, the batcher, API-key auth.

All are `async def`: they never block, and FastAPI would run a plain `def` dependency on a worker thread,
a thread hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status

from serving.batching import MicroBatcher
from serving.metrics import Metrics
from serving.overload import Admission, request_timeout_s
from serving.security import given_key, match, named_keys
from serving.state import ModelSlot, Serving
from triage.decisions.recorder import key_id
from triage.decisions.service import DecisionLog
from triage.settings import Settings
from triage.taxonomy import Policy
from triage.tickets import ScoredTicket


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_policy(request: Request) -> Policy:
    """The policy loaded at start-up."""
    policy: Policy = request.app.state.policy
    return policy


async def get_slot(request: Request) -> ModelSlot:
    """The slot holding the served model."""
    slot: ModelSlot = request.app.state.slot
    return slot


def serving_of(slot: ModelSlot) -> Serving:
    """The model in service; 503 until one is loaded."""
    current = slot.current
    if current is None:
        detail = "no model is loaded yet; train one with `triage train`"
        if slot.last_error:
            detail += f" (last load error: {slot.last_error})"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail)
    return current


async def get_serving(slot: Annotated[ModelSlot, Depends(get_slot)]) -> Serving:
    """The model in service; 503 until one is loaded."""
    return serving_of(slot)


async def get_batcher(request: Request) -> MicroBatcher:
    """The micro-batcher that owns model calls."""
    batcher: MicroBatcher = request.app.state.batcher
    return batcher


async def get_admission(request: Request) -> Admission:
    """The bounded queue in front of the model."""
    admission: Admission = request.app.state.admission
    return admission


async def require_api_key(request: Request) -> None:
    """401 unless a configured API key is given (X-API-Key, `Bearer <key>`, or `Basic` with the key as password);
    open when none is set. The key's name lands on `request.state.api_key_name` (for logs and decision records;
    never the key itself). The headers are read here, not declared as FastAPI parameters (each declared header
    costs a few percent of a small request's throughput); the OpenAPI document shows them as security schemes."""
    request.state.api_key_name = None
    keys = named_keys(request.app.state.settings)
    if not keys:
        return
    given = given_key(request.headers.get("x-api-key"), request.headers.get("authorization"))
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "Bearer"})
    name = match(keys, given)
    if name is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid API key",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.api_key_name = name


class RecordDecisions(Protocol):
    """Puts a request's scored tickets on the decision log (queued; returns at once)."""

    def __call__(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> None: ...


def _not_recorded(items: Sequence[ScoredTicket], model_name: str, model_version: str) -> None:
    """The decision log is off."""


async def get_decision_log(request: Request) -> DecisionLog:
    """The decision log; 503 when it is turned off."""
    decisions: DecisionLog | None = getattr(request.app.state, "decisions", None)
    if decisions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="the decision log is off (TRIAGE_DECISIONS__ENABLED=false)")
    return decisions


def record_decisions(request: Request) -> RecordDecisions:
    """Records this request's decisions under its API key's name (set by auth as request.state.api_key_name; a
    plain key's name is its key_id), else, when no keys are configured, a hash of any key sent; the key itself is
    never stored."""
    decisions: DecisionLog | None = getattr(request.app.state, "decisions", None)
    if decisions is None:
        return _not_recorded
    kid = getattr(request.state, "api_key_name", None)
    if kid is None:
        given = given_key(request.headers.get("x-api-key"), request.headers.get("authorization"))
        kid = key_id(given) if given else None
    return partial(decisions.recorder.record, api_key_id=kid)


@dataclass(frozen=True)
class ScoreContext:
    """Everything one score request needs, gathered in one dependency: FastAPI resolves each dependency with
    some tens of microseconds of bookkeeping, a real share of a single-ticket request."""

    serving: Serving
    batcher: MicroBatcher
    admission: Admission
    timeout_s: float
    record: RecordDecisions
    metrics: Metrics


async def get_score_context(request: Request) -> ScoreContext:
    """The served model (503 until one is loaded), the batcher (which also stores review tickets), the admission
    gate, the request's deadline and its decision recorder."""
    state = request.app.state
    settings: Settings = state.settings
    return ScoreContext(
        serving=serving_of(state.slot), batcher=state.batcher, admission=state.admission,
        timeout_s=request_timeout_s(request, settings.overload.request_timeout_ms),
        record=record_decisions(request), metrics=state.metrics)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SlotDep = Annotated[ModelSlot, Depends(get_slot)]
ServingDep = Annotated[Serving, Depends(get_serving)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
ApiKey = Depends(require_api_key)
DecisionLogDep = Annotated[DecisionLog, Depends(get_decision_log)]
ScoreContextDep = Annotated[ScoreContext, Depends(get_score_context)]
