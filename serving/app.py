"""The FastAPI application: built by `create_app`, model loaded in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from serving import errors, openapi, overload
from serving.batching import MicroBatcher
from serving.metrics import Metrics
from serving.model_source import DirectorySource, ModelSource, RegistrySource, Reloader
from serving.observability import REQUEST_ID_HEADER, RequestContext, docs_urls
from serving.routes import decisions, health, metrics, ml_backend, model, review, score
from serving.state import ModelSlot, Serving, settle_heap
from serving.workers import LeaderLock
from triage.decisions.service import build_decision_log
from triage.review.retention import RetentionTask
from triage.review.service import build_review_service
from triage.review.spool import ReviewSpool
from triage.scorer import TicketLimits
from triage.settings import Settings, get_settings
from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"


def review_store(spool: ReviewSpool, withdraw_auto_routed: bool) -> Callable[[Serving, list[ScoredTicket]], None]:
    """What the model thread runs after each call: the batch's review tickets go to the outbox in one transaction
    before any caller is answered, so an answered ticket is stored (the spool holds them if the outbox fails).
    With policy review.withdraw_auto_routed every ticket goes: queued ones this model routes automatically leave."""

    def store(serving: Serving, scored: list[ScoredTicket]) -> None:
        pending = scored if withdraw_auto_routed else [s for s in scored if s.decision.route == "review"]
        if pending:
            spool.enqueue(pending, serving.loaded.name, serving.loaded.version)

    return store


def create_app(settings: Settings | None = None, source: ModelSource | None = None) -> FastAPI:
    """Build the API; `source` defaults to the MLflow registry's @champion."""
    settings = settings or get_settings()
    policy = settings.load_policy()  # an invalid policy stops start-up here, naming the field
    limits = TicketLimits(settings.serving.max_tickets, settings.serving.max_text_chars)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slot: ModelSlot = app.state.slot
        # The event loop gives up the GIL on every socket call; a model or writer thread then keeps it for up to
        # the switch interval (5 ms by default) before the loop may run again. A shorter interval keeps the loop
        # responsive while those threads compute (process-wide; put back at shutdown).
        switch_before = sys.getswitchinterval()
        if settings.serving.switch_interval_ms > 0:
            sys.setswitchinterval(settings.serving.switch_interval_ms / 1000.0)
        model_source = source or (
            DirectorySource(settings.serving.model_dir, settings.serving.threads) if settings.serving.model_dir
            else RegistrySource(settings)
        )
        reloader = Reloader(model_source, slot, policy, limits, settings.serving.reload_interval_s,
                            settings.ops.model_retry_s)
        # Bind the port even if the registry hangs: wait a bounded time, then serve 503 until the load lands.
        first = asyncio.ensure_future(asyncio.to_thread(reloader.load_now))
        await asyncio.wait([first], timeout=settings.ops.startup_wait_s)
        if slot.current is None:
            log.warning("started without a model: %s", slot.last_error or "still loading")
        app.state.reloader = reloader
        reloader.start()
        review_service = app.state.review
        delivery = None
        if review_service is not None:
            # With several worker processes, one delivers to Label Studio and purges old texts; all of them enqueue.
            delivery = LeaderLock(review_service.outbox.path.with_name(review_service.outbox.path.name + ".lock"))
            if delivery.try_acquire():
                review_service.start()
            else:
                log.info("another worker process delivers review items; this one only queues them")
        app.state.review_spool = spool = (
            ReviewSpool(review_service, settings.ops.spool_capacity, settings.ops.spool_retry_s)
            if review_service is not None else None)
        if spool is not None:
            spool.start()
        batcher = MicroBatcher(
            slot, settings.serving.microbatch_max, settings.serving.microbatch_wait_ms,
            settings.serving.model_workers,
            after_score=None if spool is None else review_store(spool, policy.review.withdraw_auto_routed),
        )
        batcher.start()
        app.state.batcher = batcher
        retention = RetentionTask(review_service.outbox, settings.ops.retention_days, settings.ops.purge_interval_s
                                  ) if review_service is not None and delivery is not None and delivery.held else None
        if retention is not None:
            retention.start()
        decision_log = app.state.decisions
        if decision_log is not None:
            await asyncio.to_thread(decision_log.start)
        # Start-up after the model load (the decision log's migrations import Alembic) left some 25,000 objects in
        # the collector's view, walked by every full collection under load (measured: 0.22 s of them per 25,000
        # requests, 0.06 s once settled).
        settle_heap()
        try:
            yield
        finally:
            reloader.stop()
            await batcher.stop()  # the calls still running store their review tickets before the spool stops
            if decision_log is not None:  # before the review outbox closes: the audit sample goes there
                await asyncio.to_thread(decision_log.stop)
            if retention is not None:
                await asyncio.to_thread(retention.stop)
            if spool is not None:
                await asyncio.to_thread(spool.stop)
            if review_service is not None:
                await asyncio.to_thread(review_service.stop)
                review_service.outbox.close()
            if delivery is not None:
                delivery.release()
            sys.setswitchinterval(switch_before)

    app = FastAPI(
        title="triage scoring API",
        version=API_VERSION,
        description=f"Policy-violation category and severity scores for Trust & Safety tickets "
        f"(policy {policy.name} {policy.version}). At most {limits.max_tickets} tickets per request, "
        f"{limits.max_text_chars:,} characters per text, {settings.serving.max_body_bytes:,} bytes per body.",
        lifespan=lifespan,
        **docs_urls(settings),
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.slot = ModelSlot()
    app.state.review = build_review_service(settings, policy)
    app.state.review_spool = None
    app.state.decisions = build_decision_log(settings, policy.version, app.state.review)
    errors.install(app)
    openapi.install(app, settings)
    overload.install(app)
    app.state.admission = overload.Admission(settings.overload.max_pending_tickets, settings.overload.retry_after_s,
                                             settings.overload.queue_budget_ms,
                                             settings.overload.budget_floor_tickets)
    app.add_middleware(errors.BodySizeLimit, max_bytes=settings.serving.max_body_bytes)
    app.add_middleware(overload.ShedWhenFull, admission=app.state.admission)  # sheds before reading the body
    app.state.metrics = Metrics(app.state)
    app.add_middleware(RequestContext, metrics=app.state.metrics)  # outermost: every answer gets a request id
    if settings.ops.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.ops.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "X-API-Key", "Authorization", REQUEST_ID_HEADER],
                           expose_headers=[REQUEST_ID_HEADER])
    app.include_router(health.router)
    app.include_router(score.router)
    app.include_router(model.router)
    app.include_router(review.router)
    app.include_router(ml_backend.router)
    app.include_router(decisions.router)
    if settings.ops.metrics_enabled:
        app.include_router(metrics.router)
    return app


def create_worker_app() -> FastAPI:
    """The app of one `triage serve --workers N` process (uvicorn's factory): the server's logging (request ids,
    escaped messages), then the app from the environment."""
    from serving.observability import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
