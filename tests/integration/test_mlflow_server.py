"""Everything also works against a team MLflow tracking server (MLFLOW_TRACKING_URI), started by our script."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.api_server import ROOT, free_port
from training.pipeline import train
from triage.adapters import mlflow_registry as registry
from triage.data.sources import load_examples
from triage.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TRIAGE_MLFLOW_SERVER_DIR": str(tmp_path_factory.mktemp("mlflow-server")),
           "TRIAGE_MLFLOW_SERVER_PORT": str(port)}
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "mlflow_server.sh")], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "mlflow server exited"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow server not ready in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_train_register_and_load_through_the_tracking_server(mlflow_server: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    settings = Settings(home=tmp_path / "home", env="test")
    assert settings.tracking_uri == mlflow_server
    result = train(settings, "baseline", examples=load_examples())
    assert result.promoted
    loaded = registry.load_model(settings)
    assert loaded.version == result.version
    assert loaded.classifier.predict(["win a free prize now"]).categories.shape[0] == 1
    assert not (tmp_path / "home" / "mlflow.db").exists()  # nothing went to the embedded store
