"""Every door locked: with keys set, every route but health and docs answers 401 without one; named keys;
the webhook secret only in a header; prod refuses to start open."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from serving.deps import require_api_key
from tests.unit.hardening.conftest import ERROR_KEYS, build_app
from triage.models.base import LoadedModel
from triage.settings import OpsSettings, Settings
from triage.taxonomy import Policy

OPEN = {"/healthz", "/readyz", "/ml/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
KEYS = [SecretStr("ops:ops-key-123"), SecretStr("label-studio:ls-key-456"), SecretStr("plain-key-789")]


@pytest.fixture
def keyed_app(settings: Settings, tiny_loaded: LoadedModel, policy: Policy) -> FastAPI:
    app = build_app(settings.model_copy(update={"api_keys": KEYS}), tiny_loaded, policy)

    @app.get("/v1/whoami", dependencies=[Depends(require_api_key)])
    def whoami(request: Request) -> dict[str, str | None]:
        return {"name": request.state.api_key_name}

    return app


@pytest.fixture
def keyed(keyed_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(keyed_app, raise_server_exceptions=False) as c:
        yield c


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented operation, and the docs themselves."""
    ops = [(m.upper(), path) for path, item in app.openapi()["paths"].items() for m in item]
    return sorted([*ops, ("GET", "/docs"), ("GET", "/openapi.json")])


def test_every_route_but_health_and_docs_needs_a_key(keyed_app: FastAPI, keyed: TestClient) -> None:
    checked = 0
    for method, path in _routes(keyed_app):
        if path in OPEN:
            assert keyed.request(method, path).status_code < 400 or path == "/readyz"
            continue
        r = keyed.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert set(r.json()) == ERROR_KEYS
        checked += 1
    assert checked >= 9  # /v1/score, /v1/model, review status + webhook, /ml/setup|predict|webhook|versions, /metrics


def test_ml_routes_take_the_key_as_label_studio_sends_it(keyed: TestClient) -> None:
    body = {"tasks": [{"id": 1, "data": {"text": "hello"}}]}
    assert keyed.post("/ml/predict", json=body).status_code == 401
    basic = base64.b64encode(b"label-studio:ls-key-456").decode()
    assert keyed.post("/ml/predict", json=body, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert keyed.post("/ml/setup", json={"project": "1"}, headers={"X-API-Key": "ops-key-123"}).status_code == 200
    assert keyed.post("/ml/predict", json=body, headers={"Authorization": "Basic !!!"}).status_code == 401


@pytest.mark.parametrize("headers, name", [
    ({"X-API-Key": "ops-key-123"}, "ops"),
    ({"Authorization": "Bearer ls-key-456"}, "label-studio"),
    ({"X-API-Key": "plain-key-789"}, "key-"),
])
def test_the_key_name_is_on_the_request_and_in_the_log(keyed: TestClient, headers: dict[str, str], name: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="serving.access")
    r = keyed.get("/v1/whoami", headers=headers)
    assert r.status_code == 200
    assert r.json()["name"].startswith(name)
    assert f"key={r.json()['name']}" in caplog.text
    secret = next(iter(headers.values())).split()[-1]
    assert secret not in caplog.text


def test_the_webhook_refuses_a_forged_event_without_the_header_secret(keyed: TestClient) -> None:
    forged = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "task": {"id": 1, "data": {"text": "x"}},
              "annotation": {"id": 1, "result": []}}
    for path in ("/v1/review/webhook", "/v1/review/webhook?secret=dev-secret"):
        r = keyed.post(path, json=forged, headers={"X-API-Key": "ops-key-123"})
        assert r.status_code == 401
        assert "webhook secret" in r.json()["message"]
    assert keyed.app.state.review.status()["annotations"] == 0  # type: ignore[attr-defined]


def test_keys_as_named_pairs_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.security import named_keys

    monkeypatch.setenv("TRIAGE_API_KEYS", '{"ops": "k1", "ls": "k2"}')
    assert [(k.name, k.secret.get_secret_value()) for k in named_keys(Settings())] == [("ops", "k1"), ("ls", "k2")]
    monkeypatch.setenv("TRIAGE_API_KEYS", "ops:k1, k2")
    keys = named_keys(Settings())
    assert keys[0].name == "ops" and keys[1].name.startswith("key-") and keys[1].secret.get_secret_value() == "k2"


def test_prod_refuses_to_start_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_ENV", "prod")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "false")
    with pytest.raises(ValidationError, match="TRIAGE_API_KEYS is empty"):
        Settings()
    monkeypatch.setenv("TRIAGE_API_KEYS", "ops:a-real-key")
    assert Settings().env == "prod"
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "true")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__API_TOKEN", "a-real-token")
    with pytest.raises(ValidationError, match=r"webhook_secret is a placeholder"):
        Settings()


def test_docs_are_off_in_prod_unless_asked(settings: Settings, tiny_loaded: LoadedModel, policy: Policy) -> None:
    prod = settings.model_copy(update={"env": "prod", "api_keys": KEYS})
    with TestClient(build_app(prod, tiny_loaded, policy)) as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404
    on = prod.model_copy(update={"ops": OpsSettings(docs_enabled=True)})
    with TestClient(build_app(on, tiny_loaded, policy)) as c:
        assert c.get("/docs").status_code == 200


def test_label_studio_is_given_the_first_key_for_the_ml_backend(settings: Settings) -> None:
    from triage.review.service import build_review_service

    keyed = settings.model_copy(update={"api_keys": KEYS, "labelstudio": settings.labelstudio.model_copy(
        update={"enabled": True, "outbox_path": settings.home / "ls-review.db"})})
    svc = build_review_service(keyed, keyed.load_policy())
    assert svc is not None
    assert svc.backend._ml_auth == ("ops", "ops-key-123")  # type: ignore[attr-defined]
    svc.outbox.close()
    open_settings = keyed.model_copy(update={"api_keys": []})
    svc = build_review_service(open_settings, open_settings.load_policy())
    assert svc is not None and svc.backend._ml_auth is None  # type: ignore[attr-defined]
    svc.outbox.close()
