"""The /ml routes speak Label Studio's ML-backend protocol (a keyword classifier stands in for the model)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from triage.models.base import LoadedModel, ModelCard, Prediction
from triage.settings import LabelStudioSettings, Settings
from triage.taxonomy import load_policy


class KeywordClassifier:
    """Spam when the text says 'prize', unsure when it says 'maybe'."""

    def __init__(self) -> None:
        p = load_policy()
        self.card = ModelCard(kind="keyword", categories=list(p.category_names), severity_levels=list(p.severity_names),
                              policy_name=p.name, policy_version=p.version, policy_digest=p.digest)

    def predict(self, texts: Sequence[str]) -> Prediction:
        cats = np.full((len(texts), len(self.card.categories)), 0.02)
        sev = np.zeros((len(texts), len(self.card.severity_levels)))
        spam = self.card.categories.index("spam")
        for i, t in enumerate(texts):
            cats[i, spam] = 0.97 if "prize" in t else 0.55 if "maybe" in t else 0.02
            sev[i, 1 if "prize" in t else 0] = 1.0
        return Prediction(categories=cats, severity=sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


class Source:
    def __init__(self) -> None:
        self.loaded = LoadedModel(KeywordClassifier(), "kw", "kw-3", "champion", None, {})

    def current_version(self) -> str | None:
        return self.loaded.version

    def load(self) -> LoadedModel:
        return self.loaded


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from serving.app import create_app
    from serving.routes import ml_backend

    settings = Settings(home=tmp_path, api_keys=[], labelstudio=LabelStudioSettings(enabled=False))
    app = create_app(settings, source=Source())
    if "/ml/predict" not in {getattr(r, "path", "") for r in app.routes}:
        app.include_router(ml_backend.router)
    with TestClient(app) as c:
        yield c


def test_health_setup_versions(client: TestClient) -> None:
    assert client.get("/ml/health").json()["status"] == "UP"
    assert client.post("/ml/setup", json={"project": "1.1", "schema": "<View/>"}).json() == {"model_version": "kw-3"}
    assert client.get("/ml/versions").json() == {"versions": ["kw-3"]}


def test_predict_one_result_per_task_in_order(client: TestClient) -> None:
    tasks = [{"id": 1, "data": {"text": "you won a prize"}}, {"id": 2, "data": {"text": "maybe a deal"}},
             {"id": 3, "data": {"text": "hello"}}]
    r = client.post("/ml/predict", json={"tasks": tasks, "project": "1.1", "label_config": None})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 3
    cats = [next(x for x in res["result"] if x["from_name"] == "category")["value"]["choices"] for res in results]
    assert cats == [["spam"], ["spam"], ["none"]]
    assert all(res["model_version"] == "kw-3" for res in results)
    assert results[1]["score"] < results[0]["score"]  # 'maybe' is the uncertain one


def test_predict_names_tasks_without_text(client: TestClient) -> None:
    r = client.post("/ml/predict", json={"tasks": [{"id": 9, "data": {"image": "x.png"}}]})
    assert r.status_code == 422
    assert "9" in r.json()["message"] and "data.text" in r.json()["message"]


def test_predict_refuses_a_foreign_labeling_config(client: TestClient) -> None:
    r = client.post("/ml/predict", json={"tasks": [{"id": 1, "data": {"text": "hi"}}],
                                         "label_config": '<View><Image name="img" value="$image"/></View>'})
    assert r.status_code == 409 and "labeling config" in r.json()["message"]


def test_webhook_is_acknowledged(client: TestClient) -> None:
    assert client.post("/ml/webhook", json={"action": "ANNOTATION_CREATED"}).json()["status"] == "ignored"
