"""The FastAPI application: built by `create_app`, model loaded in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving import errors, overload
from serving.batching import MicroBatcher
from serving.model_source import DirectorySource, ModelSource, RegistrySource, Reloader
from serving.routes import health, ml_backend, model, review, score
from serving.state import ModelSlot
from serving.workers import LeaderLock
from triage.review.service import build_review_service
from triage.scorer import TicketLimits
from triage.settings import Settings, get_settings

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"


def create_app(settings: Settings | None = None, source: ModelSource | None = None) -> FastAPI:
    """Build the API; `source` defaults to the MLflow registry's @champion."""
    settings = settings or get_settings()
    policy = settings.load_policy()  # an invalid policy stops start-up here, naming the field
    limits = TicketLimits(settings.serving.max_tickets, settings.serving.max_text_chars)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slot: ModelSlot = app.state.slot
        model_source = source or (
            DirectorySource(settings.serving.model_dir, settings.serving.threads) if settings.serving.model_dir
            else RegistrySource(settings)
        )
        reloader = Reloader(model_source, slot, policy, limits, settings.serving.reload_interval_s)
        await asyncio.to_thread(reloader.load_now)
        if slot.current is None:
            log.warning("started without a model: %s", slot.last_error or "nothing registered")
        batcher = MicroBatcher(
            slot, settings.serving.microbatch_max, settings.serving.microbatch_wait_ms,
            settings.serving.model_workers,
        )
        batcher.start()
        app.state.batcher = batcher
        app.state.reloader = reloader
        reloader.start()
        review_service = app.state.review
        delivery = None
        if review_service is not None:
            # With several worker processes, one delivers to Label Studio; all of them enqueue.
            delivery = LeaderLock(review_service.outbox.path.with_name(review_service.outbox.path.name + ".lock"))
            if delivery.try_acquire():
                review_service.start()
            else:
                log.info("another worker process delivers review items; this one only queues them")
        try:
            yield
        finally:
            reloader.stop()
            if review_service is not None:
                await asyncio.to_thread(review_service.stop)
                review_service.outbox.close()
            if delivery is not None:
                delivery.release()
            await batcher.stop()

    app = FastAPI(
        title="triage scoring API",
        version=API_VERSION,
        description=f"Policy-violation category and severity scores for Trust & Safety tickets "
        f"(policy {policy.name} {policy.version}). At most {limits.max_tickets} tickets per request, "
        f"{limits.max_text_chars:,} characters per text, {settings.serving.max_body_bytes:,} bytes per body.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.slot = ModelSlot()
    app.state.review = build_review_service(settings, policy)
    errors.install(app)
    overload.install(app)
    app.state.admission = overload.Admission(settings.overload.max_pending_tickets, settings.overload.retry_after_s)
    app.add_middleware(errors.BodySizeLimit, max_bytes=settings.serving.max_body_bytes)
    app.add_middleware(overload.ShedWhenFull, admission=app.state.admission)  # outermost: sheds before reading
    app.include_router(health.router)
    app.include_router(score.router)
    app.include_router(model.router)
    app.include_router(review.router)
    app.include_router(ml_backend.router)
    return app
