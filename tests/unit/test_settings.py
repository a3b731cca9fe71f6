"""Settings from the environment: nesting, API keys, tracking URI precedence, secrets in prod."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from triage.settings import Settings


def test_nested_sections_and_api_keys_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path))
    monkeypatch.setenv("TRIAGE_SERVING__MAX_TICKETS", "64")
    monkeypatch.setenv("TRIAGE_API_KEYS", " k1, k2 ,")
    s = Settings()
    assert s.serving.max_tickets == 64
    assert [k.get_secret_value() for k in s.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(s)


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings(home=tmp_path).tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5055")
    assert Settings(home=tmp_path).tracking_uri == "http://127.0.0.1:5055"
    monkeypatch.setenv("TRIAGE_MLFLOW__TRACKING_URI", "sqlite:////srv/team.db")
    assert Settings(home=tmp_path).tracking_uri == "sqlite:////srv/team.db"


def test_prod_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_ENV", "prod")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "true")
    monkeypatch.setenv("TRIAGE_API_KEYS", "ops:a-real-key-789")
    with pytest.raises(ValidationError, match=r"labelstudio\.api_token is a placeholder"):
        Settings()
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__API_TOKEN", "a-real-token-123")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__WEBHOOK_SECRET", "a-real-secret-456")
    assert Settings().env == "prod"


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_SERVING__PORT", "99999")
    with pytest.raises(ValidationError, match=r"serving\.port"):
        Settings()
