"""Operating the API: request ids in every log line, log lines that cannot be forged, optional JSON logs,
docs switch."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from triage.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def docs_urls(settings: Settings) -> dict[str, Any]:
    """FastAPI's docs arguments: on unless turned off, off by default in prod (TRIAGE_OPS__DOCS_ENABLED)."""
    enabled = settings.ops.docs_enabled if settings.ops.docs_enabled is not None else settings.env != "prod"
    return {} if enabled else {"docs_url": None, "redoc_url": None, "openapi_url": None}


def new_request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one (a bad one is never logged)."""
    return given if given and _VALID_ID.match(given) else uuid.uuid4().hex


def escape(text: str) -> str:
    """Control characters and lone surrogates as \\uXXXX: one record is one line, whatever a client sent."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class SafeFormatter(logging.Formatter):
    """Text lines: the message escaped; a traceback keeps its lines but never an exception's message."""

    def format(self, record: logging.LogRecord) -> str:
        cached = record.exc_text  # another handler may have cached the full trace, messages included
        record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return redacted_traceback(ei[1]) if ei and ei[1] is not None else ""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (escaped by json itself)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name,
            "request_id": getattr(record, "request_id", "-"), "message": escape(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            out["exception"] = redacted_traceback(record.exc_info[1])
        return json.dumps(out, ensure_ascii=True)


def redacted_traceback(exc: BaseException) -> str:
    """Exception types and stack frames (file, line, function) of the chain, without messages or values:
    a message may quote a ticket's text."""
    import traceback

    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        parts.append("\n".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames))
        parts.append(f"{type(current).__module__}.{type(current).__qualname__} (message withheld)")
        current = current.__cause__ or current.__context__
    return "Traceback (most recent call last, messages withheld):\n" + "\n".join(parts)


def configure_logging(settings: Settings) -> None:
    """Root logging for the server and CLI: request ids, escaped messages, text or JSON (TRIAGE_OPS__JSON_LOGS)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.ops.json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)


class RequestContext:
    """ASGI middleware: accept or make an X-Request-ID, echo it, bind it to log records, time the request,
    write one access line (method, route, status, ms, API key name; never a body) and feed the metrics."""

    def __init__(self, app: Any, metrics: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("serving.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-request-id"), None)
        rid = new_request_id(given)
        token = request_id.set(rid)
        status_code = 500
        started = time.perf_counter()

        async def send_with_id(message: Any) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (scope.get("state") or {}).get("api_key_name")
            self.log.info("%s %s %d %.1f ms%s", scope["method"], template, status_code, elapsed * 1000,
                          f" key={key}" if key else "")
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], template, status_code, elapsed)
            request_id.reset(token)
