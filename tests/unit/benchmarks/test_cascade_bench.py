"""The cascade benchmark's pieces: its quality figures agree with the cascade; the plain pipeline server answers."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from benchmarks.bench_cascade import quality
from benchmarks.pipeline_server import build_app
from tests.unit.cascade.test_cascade import CALM, SEVERE, Table
from triage.cascade import Bands, CascadeClassifier, guarded_severities
from triage.settings import Settings


def test_quality_compares_the_cascade_with_its_full_model(settings: Settings) -> None:
    policy = settings.load_policy()
    rows = {"sure spam": ([0.97, 0.01], CALM), "sure clean": ([0.02, 0.01], CALM),
            "unsure spam": ([0.5, 0.01], CALM), "severe": ([0.02, 0.01], SEVERE)}
    fast = Table("fast", ["spam", "hate"], rows)
    # The full model disagrees with the cheap one on "sure clean" (which takes the fast path): 3 of 4 agree.
    full_rows = {**{t: ([h, s], sev) for t, ((s, h), sev) in rows.items()}, "sure clean": ([0.01, 0.99], CALM)}
    full = Table("full", ["hate", "spam"], full_rows)
    cascade = CascadeClassifier(fast, full, Bands({"spam": 0.1, "hate": 0.1}, {"spam": 0.9, "hate": 0.9}, 0.3, 0.01),
                                guarded_severities(policy), ["hate"])
    texts = list(rows)
    labels = np.array([[0, 1], [0, 0], [0, 1], [0, 0]], dtype=float)
    q = quality(cascade, texts, labels, settings)
    assert q["tickets"] == 4 and q["full_path_share"] == pytest.approx(0.5)
    assert q["decision_agreement"] == pytest.approx(0.75) and q["agreement_on_fast_path"] == pytest.approx(0.5)
    assert q["macro_auprc_full"] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)  # a negative ranked first
    assert q["macro_auprc_cascade"] == pytest.approx(1.0)


def test_pipeline_server_scores_the_api_body() -> None:
    with TestClient(build_app(workers=1, max_length=32, labels=["spam", "hate"])) as client:
        assert client.get("/readyz").status_code == 200
        body = {"tickets": [{"id": "a", "text": "win a free phone"}, {"id": "b", "text": "thanks"}]}
        results = client.post("/v1/score", json=body).json()["results"]
        assert [r["id"] for r in results] == ["a", "b"]
        assert all(set(r["scores"]) == {"spam", "hate"} and all(0 <= v <= 1 for v in r["scores"].values())
                   for r in results)
        assert client.post("/v1/score", json={"nope": 1}).status_code == 422
        assert client.post("/v1/score", json={"tickets": []}).status_code == 422
