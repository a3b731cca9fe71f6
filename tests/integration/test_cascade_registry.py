"""`triage cascade`: two registered models become one registered cascade that `triage serve` serves with paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import mlflow
import pytest

from tests.integration.api_server import TRIAGE, cli, running_api

pytestmark = pytest.mark.integration


def test_register_and_serve_a_cascade(tmp_path: Path) -> None:
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "home"), "TRIAGE_DATASETS_DIR": str(tmp_path / "none"),
           "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_LABELSTUDIO__ENABLED": "false"}
    cli(env, "train", "--model", "baseline", "--param", "char_ngram_max=4", "--param", "min_df=1")
    cli(env, "train", "--model", "baseline", "--param", "min_df=1")
    out = " ".join(cli(env, "cascade", "--fast", "1", "--full", "2", "--alias", "champion").split())
    assert "registered triage v3 = cascade(fast v1, full v2)" in out
    with running_api(env) as url:
        info = httpx.get(f"{url}/v1/model").json()
        assert info["kind"] == "cascade" and info["version"] == "3"
        assert 0.0 <= info["expected_full_share"] <= 1.0
        body = {"tickets": [{"id": str(i), "text": t} for i, t in
                            enumerate(["win a free iphone now click", "thanks for the help", "I will hurt you"])]}
        results = httpx.post(f"{url}/v1/score", json=body, timeout=30).json()["results"]
        assert all(r["model"]["path"] in ("fast", "full") for r in results)

    # The cheap model distilled from the full one: registered as one cascade, its run in MLflow says how.
    out = " ".join(cli(env, "cascade", "--full", "2", "--distill").split())
    assert "registered triage v4 = cascade(fast distilled from v2, full v2)" in out
    both = subprocess.run([TRIAGE, "cascade", "--full", "2", "--fast", "1", "--distill"], env=env,
                          capture_output=True, text=True, check=False)
    assert both.returncode == 2 and "exactly one" in both.stdout + both.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()],
                             "params.fast_version = 'distilled from v2'")
    assert len(run) == 1 and float(run[0].data.params["distill.alpha"]) > 0
    assert run[0].data.metrics["distill.train_examples"] > 0
