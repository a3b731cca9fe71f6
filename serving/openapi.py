"""The OpenAPI document as the server behaves: limits from the settings, the project's error body for every
4xx/5xx actually sent (400, 401, 409, 413, 422, 503), and the security schemes in force."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving import overload, validation
from triage.settings import Settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
# No control characters in ids.
ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
# A text needs one visible character (control characters are read as spaces).
TEXT_PATTERN = "[^\\s\\u0000-\\u001f\\u007f-\\u009f]"
OPEN_PATHS = {"/healthz", "/readyz", "/ml/health"}
BODY_ERRORS = {
    "400": "Body not readable as UTF-8 JSON.",
    "413": "Body over the size limit.",
    "422": "Invalid request; `fields` names each bad field, `ticket_ids` the tickets.",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _patch_schemas(schemas: dict[str, Any], settings: Settings) -> None:
    ticket = schemas["TicketIn"]["properties"]
    ticket["id"]["pattern"] = ID_PATTERN
    ticket["text"].update(minLength=1, maxLength=settings.serving.max_text_chars, pattern=TEXT_PATTERN)
    ticket["metadata"]["maxProperties"] = validation.METADATA_MAX_KEYS
    tickets = schemas["ScoreRequest"]["properties"]["tickets"]
    tickets.update(minItems=1, maxItems=settings.serving.max_tickets)
    if "PredictIn" in schemas:  # Label Studio tasks: free-form, but each needs a clean data.text
        tasks = schemas["PredictIn"]["properties"]["tasks"]
        tasks["maxItems"] = settings.serving.max_tickets
        tasks["items"] = {"type": "object", "required": ["data"], "additionalProperties": True, "properties": {
            "data": {"type": "object", "required": ["text"], "additionalProperties": True, "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": settings.serving.max_text_chars,
                         "pattern": TEXT_PATTERN}}}}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _patch_parameters(path: str, op: dict[str, Any], categories: list[str]) -> None:
    """A header is sent with a value or not at all: its schema is the value's (no `null`). The decision log's
    category filter takes the policy's names only."""
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        if p.get("in") == "header" and "anyOf" in schema:
            kept = [s for s in schema["anyOf"] if s.get("type") != "null"]
            if len(kept) == 1:
                p["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept[0]}
        if path == "/v1/decisions" and p.get("name") == "category" and categories:
            p["schema"] = {"type": "string", "enum": categories, "title": "Category"}


def _patch_operation(path: str, method: str, op: dict[str, Any], keyed: bool, categories: list[str]) -> None:
    _patch_parameters(path, op, categories)
    responses: dict[str, Any] = op.setdefault("responses", {})
    if method in ("post", "put", "patch") and "requestBody" in op:
        for code, description in BODY_ERRORS.items():
            if code not in responses or "HTTPValidationError" in str(responses[code]):
                responses[code] = _error(description)
    if path == "/v1/score":
        op.setdefault("parameters", []).append(overload.timeout_parameter())
        responses["409"] = _error("Two tickets share an id; `ticket_ids` names them.")
    if path == "/v1/review/webhook":
        op["security"] = [{"WebhookSecret": []}]
        op["requestBody"]["content"]["application/json"]["schema"] = {
            "type": "object", "required": ["action"], "additionalProperties": True,
            "properties": {"action": {"type": "string", "description": "The Label Studio event, e.g. "
                                                                       "ANNOTATION_CREATED."}}}
        responses.setdefault("401", _error("Missing or wrong webhook secret (header only)."))
        params = op.get("parameters", [])
        op["parameters"] = [p for p in params if p.get("in") != "header"]
    elif path in OPEN_PATHS:
        op["security"] = []
    elif keyed:
        op["security"] = [{"ApiKeyHeader": []}, {"Bearer": []}, {"Basic": []}]
        responses.setdefault("401", _error("Missing or wrong API key."))
    if not keyed and path != "/v1/review/webhook":
        responses.pop("401", None)  # open server: no 401 is ever sent
    # The key headers are documented by the security schemes, not as parameters.
    if "parameters" in op:
        op["parameters"] = [p for p in op["parameters"]
                            if not (p.get("in") == "header" and p.get("name", "").lower() in
                                    {"x-api-key", "authorization"})]
        if not op["parameters"]:
            del op["parameters"]
    for code, response in responses.items():
        if code.startswith(("4", "5")) and "HTTPValidationError" in str(response):
            response["content"] = {"application/json": {"schema": ERROR_REF}}


def install(app: FastAPI, settings: Settings) -> None:
    """Replace `app.openapi` with the truthful document (built once, cached)."""
    keyed = bool(settings.api_keys)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = doc.setdefault("components", {})
        _patch_schemas(components.setdefault("schemas", {}), settings)
        schemes: dict[str, Any] = {
            "WebhookSecret": {"type": "apiKey", "in": "header", "name": settings.labelstudio.webhook_header}}
        if keyed:
            schemes.update({
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
                "Basic": {"type": "http", "scheme": "basic", "description": "Any user name, the key as password."},
            })
        components["securitySchemes"] = schemes
        policy = getattr(app.state, "policy", None)
        categories = [*policy.category_names, "none"] if policy is not None else []
        for path, item in doc.get("paths", {}).items():
            for method, op in item.items():
                _patch_operation(path, method, op, keyed, categories)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
