"""Overload behaviour: a bounded queue in front of the model and a per-request deadline.

Without a bound, a burst queues without limit and every caller waits longer. Here a request is admitted only
while fewer than `max_pending_tickets` tickets are waiting for or inside a model call; otherwise it is answered
429 with Retry-After at once. An admitted request carries a deadline (X-Request-Timeout-Ms, default from
settings): a job still queued when it passes is dropped before the model sees it, and the caller gets 503 with
the deadline in the message rather than an answer that comes too late to use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.schemas import ErrorOut


class OverloadedError(Exception):
    """Too many tickets are waiting for the model: come back after `retry_after_s`."""

    def __init__(self, pending: int, wanted: int, limit: int, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"server busy: {pending} tickets are waiting for the model and this request adds {wanted}, "
                         f"over the limit of {limit}; retry after {retry_after_s} s")


class DeadlineExceededError(Exception):
    """The request's deadline passed before its tickets were scored; nothing was scored for it."""

    def __init__(self, timeout_ms: float) -> None:
        self.timeout_ms = timeout_ms
        super().__init__(f"not scored within the request deadline of {timeout_ms:.0f} ms (X-Request-Timeout-Ms); "
                         "the tickets were not scored, retry later or with a longer deadline")


class Admission:
    """Counts tickets admitted and not yet answered; refuses a request that would exceed the limit.

    Runs on the event loop only (no await between check and increment), so it needs no lock.
    """

    def __init__(self, max_pending_tickets: int, retry_after_s: int = 1) -> None:
        if max_pending_tickets < 1:
            raise ValueError(f"max_pending_tickets must be at least 1, got {max_pending_tickets}")
        self.limit = max_pending_tickets
        self.retry_after_s = retry_after_s
        self.pending = 0
        self.refused = 0

    @contextmanager
    def admit(self, tickets: int) -> Iterator[None]:
        """Hold `tickets` places while the block runs; OverloadedError when they do not fit.

        A request larger than the whole limit is still admitted into an empty queue, so it can never starve.
        """
        if self.pending and self.pending + tickets > self.limit:
            self.refused += 1
            raise OverloadedError(self.pending, tickets, self.limit, self.retry_after_s)
        self.pending += tickets
        try:
            yield
        finally:
            self.pending -= tickets


def timeout_seconds(header_ms: int | None, default_ms: float) -> float:
    """The request's deadline in seconds: the header's milliseconds when given, else the default."""
    return (default_ms if header_ms is None else float(header_ms)) / 1000.0


def _error(status_code: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorOut(error=error, message=message).model_dump(), status_code=status_code,
                        headers=headers)


async def overloaded(request: Request, exc: Exception) -> JSONResponse:
    """429 with Retry-After: the queue in front of the model is full."""
    assert isinstance(exc, OverloadedError)
    return _error(429, "overloaded", str(exc), {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))})


async def deadline_exceeded(request: Request, exc: Exception) -> JSONResponse:
    """503: the deadline passed before the model scored the request."""
    assert isinstance(exc, DeadlineExceededError)
    return _error(503, "deadline_exceeded", str(exc), {"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register the overload handlers on an app."""
    app.add_exception_handler(OverloadedError, overloaded)
    app.add_exception_handler(DeadlineExceededError, deadline_exceeded)


class ShedWhenFull:
    """ASGI middleware: while the queue is full, refuse score requests before reading or parsing their body.

    Under overload most arriving requests are refused; refusing them after JSON parsing and validation would
    spend the CPU the model needs on requests that are turned away anyway. The route still checks the exact
    ticket count (`Admission.admit`) for the requests that get through.
    """

    def __init__(self, app: ASGIApp, admission: Admission, paths: tuple[str, ...] = ("/v1/score",)) -> None:
        self.app = app
        self.admission = admission
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.admission
        if scope["type"] == "http" and scope.get("path") in self.paths and gate.pending >= gate.limit:
            gate.refused += 1
            response = _error(429, "overloaded", str(OverloadedError(gate.pending, 1, gate.limit, gate.retry_after_s)),
                              {"Retry-After": str(gate.retry_after_s)})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
