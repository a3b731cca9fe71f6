"""The API with a policy whose new category has only seed examples: scored at start-up, reviewed, reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.seeded import NEW, PARAPHRASE, UNRELATED, HashEncoder, write_seeded_policy
from tests.unit.serving.test_api import StaticSource, tickets
from triage.models.base import LoadedModel
from triage.settings import Settings


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> HashEncoder:
    enc = HashEncoder()
    monkeypatch.setattr("triage.encoder.get_encoder", lambda: enc)
    return enc


@pytest.fixture
def client(settings: Settings, tiny_loaded: LoadedModel, tmp_path: Path, encoder: HashEncoder) -> Iterator[TestClient]:
    seeded = settings.model_copy(update={"policy": write_seeded_policy(tmp_path)})
    with TestClient(create_app(seeded, source=StaticSource(tiny_loaded))) as c:
        yield c


def test_seeds_are_embedded_at_start_up(client: TestClient, encoder: HashEncoder) -> None:
    assert encoder.calls == 1  # once, in the lifespan's model load, before any request


def test_model_info_says_the_new_category_runs_on_examples(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert NEW in body["categories"] and NEW not in body["untrained_categories"]
    assert body["example_heads"][NEW]["runs_on"] == "examples"
    assert body["example_heads"][NEW]["examples"] == 10 and body["example_heads"][NEW]["always_review"] is True
    assert "hate" not in body["example_heads"]


def test_new_category_is_scored_without_retraining_and_its_tickets_are_reviewed(client: TestClient) -> None:
    r = client.post("/v1/score", json=tickets(PARAPHRASE, *UNRELATED))
    assert r.status_code == 200, r.text
    para, *others = r.json()["results"]
    assert para["categories"][NEW] > max(o["categories"][NEW] for o in others)
    assert para["route"] == "review"
    assert any(f"{NEW} runs on seed examples only" in reason for reason in para["reasons"])
    assert not any("runs on seed examples" in reason for o in others for reason in o["reasons"])


def test_default_policy_leaves_the_model_as_it_is(settings: Settings, tiny_loaded: LoadedModel,
                                                  encoder: HashEncoder) -> None:
    with TestClient(create_app(settings, source=StaticSource(tiny_loaded))) as c:
        body = c.get("/v1/model").json()
    assert body["example_heads"] == {} and encoder.calls == 0
