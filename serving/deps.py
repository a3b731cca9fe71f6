"""FastAPI dependencies as Annotated aliases: settings, the served model, the batcher, API-key auth.

All are `async def`: they never block, and FastAPI would run a plain `def` dependency on a worker thread,
a thread hop per dependency per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from serving.batching import MicroBatcher
from serving.overload import Admission
from serving.state import ModelSlot, Serving
from triage.settings import Settings
from triage.taxonomy import Policy


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


async def get_serving(slot: Annotated[ModelSlot, Depends(get_slot)]) -> Serving:
    """The model in service; 503 until one is loaded."""
    current = slot.current
    if current is None:
        detail = "no model is loaded yet; train one with `triage train`"
        if slot.last_error:
            detail += f" (last load error: {slot.last_error})"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail)
    return current


async def get_batcher(request: Request) -> MicroBatcher:
    """The micro-batcher that owns model calls."""
    batcher: MicroBatcher = request.app.state.batcher
    return batcher


async def get_admission(request: Request) -> Admission:
    """The bounded queue in front of the model."""
    admission: Admission = request.app.state.admission
    return admission


async def require_api_key(
    settings: Annotated[Settings, Depends(get_app_settings)],
    x_api_key: Annotated[str | None, Header(description="One of TRIAGE_API_KEYS, when set.")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """401 unless a configured API key is given (X-API-Key or Authorization: Bearer); open when none is set."""
    if not settings.api_keys:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "Bearer"})
    ok = any(hmac.compare_digest(given.encode(), k.get_secret_value().encode()) for k in settings.api_keys)
    if not ok:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid API key",
                            headers={"WWW-Authenticate": "Bearer"})


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SlotDep = Annotated[ModelSlot, Depends(get_slot)]
ServingDep = Annotated[Serving, Depends(get_serving)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
ApiKey = Depends(require_api_key)
