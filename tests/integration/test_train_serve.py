"""End to end with real components: `triage train` into a real SQLite MLflow store, `triage serve` under uvicorn."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.api_server import TRIAGE, running_api

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("triage-home")
    return {**os.environ, "TRIAGE_HOME": str(home), "TRIAGE_DATASETS_DIR": str(home / "no-datasets"),
            "TRIAGE_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1"}


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([TRIAGE, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          check=False)
    assert done.returncode == 0, f"triage {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def trained(env: dict[str, str]) -> dict[str, str]:
    done = _cli(env, "train", "--model", "baseline")
    assert "registered triage version 1 as @champion" in done.stdout.replace("\n", " ")
    assert (Path(env["TRIAGE_HOME"]) / "mlflow.db").is_file()
    return env


@pytest.fixture(scope="module")
def server(trained: dict[str, str]) -> Iterator[str]:
    with running_api(trained) as url:
        yield url


def test_registry_holds_the_champion(trained: dict[str, str]) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(trained['TRIAGE_HOME']) / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version_by_alias("triage", "champion")
    run = client.get_run(mv.run_id)
    assert "test.macro_f1" in run.data.metrics
    assert run.data.params["model_kind"] == "baseline"
    assert run.data.params["data_origin"] == "shipped example tickets"
    import mlflow.pyfunc

    mlflow.set_registry_uri(uri)
    assert mlflow.pyfunc.load_model(f"models:/triage/{mv.version}", model_config={"threads": 2}).model_config == {
        "threads": 2}  # TRIAGE_SERVING__THREADS reaches the loaded classifier
    artifacts = {a.path for a in client.list_artifacts(mv.run_id, "figures")}
    assert "figures/confusion_matrices.png" in artifacts


def test_served_api_scores_with_the_champion(server: str) -> None:
    r = httpx.post(f"{server}/v1/score", json={"tickets": [
        {"id": "a", "text": "Congratulations! You won a $1000 gift card, claim at bit.ly/xyz"},
        {"id": "b", "text": "Thanks, the package arrived on time."},
    ]}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["version"] == "1"
    assert [x["id"] for x in body["results"]] == ["a", "b"]
    info = httpx.get(f"{server}/v1/model", timeout=5).json()
    assert info["kind"] == "baseline" and "macro_f1" in info["metrics"]
    bad = httpx.post(f"{server}/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422


def test_offline_batch_scoring_and_evaluate(trained: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "tickets.csv"
    src.write_text("id,text,channel\nx1,free entry to win a prize text WIN now,sms\nx2,see you at lunch,chat\n")
    out = tmp_path / "scored.jsonl"
    _cli(trained, "score", str(src), "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["x1", "x2"]
    assert rows[0]["categories"]["spam"] > rows[1]["categories"]["spam"]
    done = _cli(trained, "evaluate")
    assert "macro" in done.stdout
