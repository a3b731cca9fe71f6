"""`triage cascade`: two registered models become one registered cascade that `triage serve` serves with paths."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.integration.api_server import cli, running_api

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
