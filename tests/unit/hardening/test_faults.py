"""Start-up with the registry down: the port answers at once, 503 with a plain reason, recovery without a restart,
one log line per change of state."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from triage.models.base import LoadedModel
from triage.settings import MlflowSettings, OpsSettings, Settings


class FlakyRegistry:
    """A registry that is unreachable until `up` is set (the error text is what MLflow's client raises)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.up = False
        self.calls = 0

    def current_version(self) -> str | None:
        self.calls += 1
        if not self.up:
            raise ConnectionError("API request to http://10.0.0.7:5000/api/2.0/mlflow/registered-models/alias "
                                  "failed with exception HTTPConnectionPool: Max retries exceeded")
        return self.loaded.version

    def load(self) -> LoadedModel:
        return self.loaded


def _wait(check, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_registry_down_then_back_without_restart(settings: Settings, tiny_loaded: LoadedModel,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    flaky = FlakyRegistry(tiny_loaded)
    fast = settings.model_copy(update={"ops": OpsSettings(model_retry_s=0.05)})  # reload polling stays off
    with TestClient(create_app(fast, source=flaky)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["detail"] == "the model registry is unreachable; retrying"
        score = c.post("/v1/score", json={"tickets": [{"id": "A", "text": "hi"}]})
        assert score.status_code == 503 and "unreachable" in score.json()["message"]
        assert "10.0.0.7" not in r.text + score.text and "http" not in r.json()["detail"]
        _wait(lambda: flaky.calls >= 5)
        flaky.up = True
        _wait(lambda: c.get("/readyz").status_code == 200)
        assert c.post("/v1/score", json={"tickets": [{"id": "A", "text": "hi"}]}).status_code == 200
    failures = [r for r in caplog.records if "model load failed" in r.getMessage()]
    assert len(failures) == 1 and not any(r.exc_info for r in failures)  # one line, no traceback per poll
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_dead_tracking_server_binds_at_once_and_says_why(settings: Settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = settings.model_copy(update={"mlflow": MlflowSettings(tracking_uri=f"http://127.0.0.1:{port}"),
                                       "ops": OpsSettings(startup_wait_s=3.0)})
    started = time.monotonic()
    with TestClient(create_app(dead)) as c:
        elapsed = time.monotonic() - started
        assert c.get("/readyz").status_code == 503  # answering while the first load still runs
        _wait(lambda: c.get("/readyz").json()["detail"] != "no model loaded yet", timeout_s=60)
        r = c.get("/readyz")
    assert elapsed < 10, elapsed
    assert r.status_code == 503
    detail = r.json()["detail"]
    assert detail in {"the model registry is unreachable; retrying",
                      "the model could not be loaded (MlflowException); retrying, see the server log"}
    assert str(port) not in detail and "SELECT" not in detail
