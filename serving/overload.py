"""Overload behaviour: a bounded queue in front of the model and a per-request deadline.

Without a bound, a burst queues without limit and every caller waits longer. Here a request is admitted only
while fewer than `max_pending_tickets` tickets are waiting for or inside a model call, and while the wait those
tickets ahead of it are expected to cause stays within `queue_budget_ms`; otherwise it is answered 429 with
Retry-After at once. The expected wait is the tickets ahead times the measured time each ticket in the queue
costs (a moving average of latency over queue length at admission), so the bound follows the model and the host:
a slower model or a busier machine admits fewer, and the latency of admitted requests stays bounded.
An admitted request carries a deadline (X-Request-Timeout-Ms, default from settings): a job still queued when it
passes is dropped before the model sees it, and the caller gets 503 with the deadline in the message rather than
an answer that comes too late to use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.schemas import ErrorOut


class OverloadedError(Exception):
    """Too many tickets are waiting for the model: come back after `retry_after_s`."""

    def __init__(self, pending: int, wanted: int, limit: int, retry_after_s: int,
                 expected_wait_ms: float | None = None, budget_ms: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        why = (f"expected to wait {expected_wait_ms:.0f} ms, over the queue budget of {budget_ms:.0f} ms"
               if expected_wait_ms is not None else f"over the limit of {limit}")
        super().__init__(f"server busy: {pending} tickets are waiting for the model and this request adds {wanted}, "
                         f"{why}; retry after {retry_after_s} s")


class DeadlineExceededError(Exception):
    """The request's deadline passed before its tickets were scored; nothing was scored for it."""

    def __init__(self, timeout_ms: float) -> None:
        self.timeout_ms = timeout_ms
        super().__init__(f"not scored within the request deadline of {timeout_ms:.0f} ms (X-Request-Timeout-Ms); "
                         "the tickets were not scored, retry later or with a longer deadline")


class Admission:
    """Counts tickets admitted and not yet answered; refuses a request that would exceed the limit, or wait longer
    than the queue budget behind the tickets already admitted.

    Runs on the event loop only (no await between check and increment), so it needs no lock.
    """

    def __init__(self, max_pending_tickets: int, retry_after_s: int = 1, queue_budget_ms: float = 0.0,
                 budget_floor_tickets: int = 16, smoothing: float = 0.05) -> None:
        if max_pending_tickets < 1:
            raise ValueError(f"max_pending_tickets must be at least 1, got {max_pending_tickets}")
        self.limit = max_pending_tickets
        self.retry_after_s = retry_after_s
        self.budget_s = queue_budget_ms / 1000.0  # 0 = no latency budget, the ticket limit alone
        # Below this many pending tickets the budget never refuses: a few concurrent clients are not an overload,
        # and a stall of the host (a noisy neighbour) must not turn them away.
        self.floor = budget_floor_tickets
        self.smoothing = smoothing
        self.pending = 0
        self.refused = 0
        self.ticket_cost_s: float | None = None  # measured seconds of latency per ticket in the queue

    def expected_wait_s(self) -> float:
        """How long the tickets already admitted are expected to hold up a new request (0 before any measure)."""
        return self.pending * (self.ticket_cost_s or 0.0)

    def full(self) -> bool:
        """True when a one-ticket request would be refused now (the check before the body is read)."""
        return self.pending >= self.limit or self._over_budget()

    def _over_budget(self) -> bool:
        return self.budget_s > 0 and self.pending >= self.floor and self.expected_wait_s() > self.budget_s

    def _refusal(self, tickets: int) -> OverloadedError | None:
        if not self.pending:
            return None  # an empty queue admits anything: a request can never starve
        if self.pending + tickets > self.limit:
            return OverloadedError(self.pending, tickets, self.limit, self.retry_after_s)
        if self._over_budget():
            return OverloadedError(self.pending, tickets, self.limit, self.retry_after_s,
                                   self.expected_wait_s() * 1000, self.budget_s * 1000)
        return None

    def refuse(self, tickets: int) -> OverloadedError:
        """Count a refusal and say why (for the check before the body is read)."""
        self.refused += 1
        return self._refusal(tickets) or OverloadedError(self.pending, tickets, self.limit, self.retry_after_s)

    @contextmanager
    def admit(self, tickets: int) -> Iterator[None]:
        """Hold `tickets` places while the block runs; OverloadedError when they do not fit.

        A request larger than the whole limit is still admitted into an empty queue, so it can never starve; its
        own size does not count against the budget, only the tickets ahead of it do. A block that ends normally
        updates the per-ticket cost with its latency over the tickets that were in the queue with it.
        """
        refusal = self._refusal(tickets)
        if refusal is not None:
            self.refused += 1
            raise refusal
        self.pending += tickets
        queued = self.pending
        started = time.perf_counter()
        try:
            yield
        finally:
            self.pending -= tickets
        cost = (time.perf_counter() - started) / queued
        self.ticket_cost_s = cost if self.ticket_cost_s is None else \
            self.ticket_cost_s + self.smoothing * (cost - self.ticket_cost_s)


TIMEOUT_HEADER = "x-request-timeout-ms"
TIMEOUT_MAX_MS = 600_000
TIMEOUT_DOC = ("Deadline in milliseconds (default TRIAGE_OVERLOAD__REQUEST_TIMEOUT_MS); past it the answer is 503, "
               "unscored.")
_TIMEOUT_MS: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=1, le=TIMEOUT_MAX_MS)])


def timeout_parameter() -> dict[str, object]:
    """The deadline header as an OpenAPI parameter (read by `request_timeout_s`, not declared to FastAPI)."""
    schema = {"description": TIMEOUT_DOC, "title": "X-Request-Timeout-Ms", "type": "integer",
              "maximum": TIMEOUT_MAX_MS, "minimum": 1}
    return {"name": TIMEOUT_HEADER, "in": "header", "required": False, "schema": schema, "description": TIMEOUT_DOC}


def request_timeout_s(request: Request, default_ms: float) -> float:
    """The request's deadline in seconds: X-Request-Timeout-Ms when sent (1 to 600,000), else the default.

    Read here rather than declared as a FastAPI header parameter: each declared header is validated through
    FastAPI's parameter machinery, which cost a single-ticket score request about 3% of its throughput per
    header. A bad value is the same 422 a declared parameter gives."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_ms / 1000.0
    try:
        return _TIMEOUT_MS.validate_python(raw) / 1000.0
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("header", TIMEOUT_HEADER)} for e in err.errors()]) from None


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
        if scope["type"] == "http" and scope.get("path") in self.paths and gate.full():
            response = _error(429, "overloaded", str(gate.refuse(1)), {"Retry-After": str(gate.retry_after_s)})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
