"""Map domain errors and request problems to 4xx bodies that say what is wrong; never a bare 500."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.batching import NoModelError
from serving.observability import redacted_traceback
from serving.schemas import ErrorOut
from serving.validation import printable
from triage.errors import DecisionQueryError, DuplicateTicketIdsError, InvalidTicketsError

log = logging.getLogger(__name__)


def _body(status_code: int, error: str, message: str, ticket_ids: list[str] | None = None,
          fields: list[str] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    # Client-sent ids and keys may hold control characters or lone surrogates: escape them (a lone
    # surrogate cannot even be encoded as UTF-8).
    out = ErrorOut(error=error, message=printable(message), ticket_ids=[printable(t) for t in ticket_ids or []],
                   fields=[printable(f) for f in fields or []])
    return JSONResponse(out.model_dump(), status_code=status_code, headers=headers)


def _ticket_ids_for(loc_indices: set[int], raw: Any) -> list[str]:
    """Ticket ids for the list positions that failed validation, when the raw body has them."""
    tickets = raw.get("tickets") if isinstance(raw, dict) else None
    out = []
    for i in sorted(loc_indices):
        ticket = tickets[i] if isinstance(tickets, list) and i < len(tickets) else None
        tid = ticket.get("id") if isinstance(ticket, dict) else None
        out.append(str(tid)[:256] if isinstance(tid, str | int) and str(tid) else f"#{i}")
    return out


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, and the tickets it belongs to."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (e.get("ctx") or {}).get("error", "invalid JSON")
        return _body(422, "malformed_json", f"request body is not valid JSON: {reason}")
    fields, indices = [], set()
    for e in errors:
        loc = [str(p)[:64] for p in e.get("loc", ()) if p != "body"]
        fields.append(f"{'.'.join(loc) or 'body'}: {e.get('msg')}")
        if len(loc) >= 2 and loc[0] == "tickets" and loc[1].isdigit():
            indices.add(int(loc[1]))
    raw = exc.body if hasattr(exc, "body") else None
    ids = _ticket_ids_for(indices, raw)
    message = "; ".join(fields[:10]) + (f" (and {len(fields) - 10} more)" if len(fields) > 10 else "")
    if ids:
        message = f"invalid tickets {', '.join(ids[:20])}: {message}"
    return _body(422, "invalid_request", message, ids, fields)


async def invalid_tickets(request: Request, exc: Exception) -> JSONResponse:
    """422 for tickets the domain refuses (empty, too long, too many); 409 for ids repeated in one request."""
    assert isinstance(exc, InvalidTicketsError)
    if isinstance(exc, DuplicateTicketIdsError):
        return _body(409, "duplicate_ids", str(exc), exc.ticket_ids)
    return _body(422, "invalid_tickets", str(exc), exc.ticket_ids)


async def bad_query(request: Request, exc: Exception) -> JSONResponse:
    """422 for an audit query the decision log cannot answer as asked."""
    return _body(422, "invalid_query", str(exc))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Every HTTPException in the same body shape."""
    assert isinstance(exc, StarletteHTTPException)
    names = {400: "malformed_body", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
             405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 503: "unavailable"}
    message = str(exc.detail)
    if exc.status_code == 400 and message == "There was an error parsing the body":
        message = "the request body could not be read: send UTF-8 JSON (nesting at most a few hundred levels)"
    return _body(exc.status_code, names.get(exc.status_code, "http_error"), message,
                 headers=getattr(exc, "headers", None))


async def no_model(request: Request, exc: Exception) -> JSONResponse:
    """503 while no model is loaded."""
    return _body(503, "unavailable", str(exc))


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: log it with the trace, tell the client without leaking internals."""
    # The trace without exception messages: a message may quote the request's text.
    log.error("unhandled error on %s %s\n%s", request.method, request.url.path, redacted_traceback(exc))
    return _body(500, "internal_error", "internal error; the request was not processed, retry or report it")


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InvalidTicketsError, invalid_tickets)
    app.add_exception_handler(DecisionQueryError, bad_query)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(NoModelError, no_model)
    app.add_exception_handler(Exception, unexpected)


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit, by Content-Length or by counting streamed bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        # Read the whole body (bounded by the limit) before the app sees it, then replay it.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}],
                                      receive), send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(ErrorOut(error="too_large",
                                   message=f"request body is over the {self.max_bytes:,}-byte limit").model_dump())
        await send({"type": "http.response.start", "status": status.HTTP_413_CONTENT_TOO_LARGE,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable that hands out `messages`, then defers to `then` (for disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
