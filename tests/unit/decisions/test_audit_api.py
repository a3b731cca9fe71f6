"""The audit API over a real app: decisions recorded by /v1/score, survive a restart, bad queries get 4xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from serving.app import create_app
from tests.unit.serving.test_api import StaticSource, tickets
from triage.decisions.recorder import key_id
from triage.models.base import LoadedModel
from triage.settings import Settings

KEY = {"X-API-Key": "k1"}


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": [SecretStr("k1")]})


@pytest.fixture
def client(keyed: Settings, tiny_loaded: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app(keyed, source=StaticSource(tiny_loaded))) as c:
        yield c


def test_scored_tickets_are_on_record_and_survive_a_restart(keyed: Settings, tiny_loaded: LoadedModel) -> None:
    with TestClient(create_app(keyed, source=StaticSource(tiny_loaded))) as c:
        assert c.post("/v1/score", json=tickets("win a free iphone, click", "thanks"), headers=KEY).status_code == 200
        r = c.post("/v1/score", json=tickets("win a free iphone, click"), headers=KEY)
        assert r.status_code == 200
        returned = r.json()["results"][0]
    # A new process on the same database: the decisions are still there.
    with TestClient(create_app(keyed, source=StaticSource(tiny_loaded))) as c:
        r = c.get("/v1/decisions/T-0", headers=KEY)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ticket_id"] == "T-0" and len(body["decisions"]) == 2
        first, second = body["decisions"][1], body["decisions"][0]
        assert second["decided_at"] >= first["decided_at"]
        assert second["model_name"] == "triage" and second["model_version"] == "1"
        assert second["policy_version"] == "2026.11.1" and second["api_key_id"] == key_id("k1")
        assert "k1" not in r.text.replace(key_id("k1"), "")
        assert second["categories"] == pytest.approx(returned["categories"], abs=1e-6)
        assert second["category"] == returned["category"] and second["route"] == returned["route"]
        assert second["severity"] == returned["severity"]["level"] and second["text"] is None
        assert second["text_length"] == len("win a free iphone, click")
        assert second["route"] in ("auto", "review") and second["reasons"]
        page = c.get("/v1/decisions", params={"limit": 2}, headers=KEY).json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = c.get("/v1/decisions", params={"limit": 2, "cursor": page["next_cursor"]}, headers=KEY).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        cat = second["category"]
        filtered = c.get("/v1/decisions", params={"category": cat}, headers=KEY).json()["items"]
        assert filtered and all(d["category"] == cat for d in filtered)


def test_same_key_rules_as_scoring(client: TestClient) -> None:
    r = client.get("/v1/decisions/T-0")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert client.get("/v1/decisions", headers={"X-API-Key": "wrong"}).status_code == 401


@pytest.mark.parametrize(("params", "needle"), [
    ({"since": "last tuesday"}, "since"),
    ({"until": "2026-13-40"}, "until"),
    ({"limit": 0}, "limit"),
    ({"limit": 5000}, "limit"),
    ({"route": "maybe"}, "route"),
    ({"category": "jaywalking"}, "unknown category 'jaywalking'"),
    ({"since": "2026-11-10T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "must be before until"),
    ({"cursor": "garbage"}, "cursor"),
])
def test_bad_queries_get_a_clear_422(client: TestClient, params: dict, needle: str) -> None:
    r = client.get("/v1/decisions", params=params, headers=KEY)
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"error", "message", "ticket_ids", "fields"} and needle in body["message"]


def test_unknown_ticket_is_404(client: TestClient) -> None:
    r = client.get("/v1/decisions/NOPE-1", headers=KEY)
    assert r.status_code == 404 and r.json()["message"] == "no decision on record for ticket 'NOPE-1'"


def test_log_off_means_503_not_500(keyed: Settings, tiny_loaded: LoadedModel) -> None:
    off = keyed.model_copy(update={"decisions": keyed.decisions.model_copy(update={"enabled": False})})
    with TestClient(create_app(off, source=StaticSource(tiny_loaded))) as c:
        assert c.post("/v1/score", json=tickets("hello"), headers=KEY).status_code == 200
        r = c.get("/v1/decisions/T-0", headers=KEY)
        assert r.status_code == 503 and "TRIAGE_DECISIONS__ENABLED" in r.json()["message"]


def test_drift_endpoint(keyed: Settings, tiny_loaded: LoadedModel) -> None:
    local = keyed.model_copy(update={"datasets_dir": None})  # reference from the shipped examples: fast
    with TestClient(create_app(local, source=StaticSource(tiny_loaded))) as c:
        texts = [f"win a free prize number {i}, click bit.ly/{i}" for i in range(150)]
        for start in range(0, 150, 50):
            body = {"tickets": [{"id": f"S-{i}", "text": t} for i, t in enumerate(texts[start:start + 50], start)]}
            assert c.post("/v1/score", json=body, headers=KEY).status_code == 200
        r = c.get("/v1/drift", headers=KEY)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["decisions"] == 150 and out["drifted"] is True, out
        assert {f["feature"] for f in out["features"]} >= {"score:spam", "text_length", "script_mix"}
        assert any(f["flagged"] for f in out["features"])
        assert (local.home / "drift" / "triage-1.joblib").is_file()  # cached for the next call
        bad = c.get("/v1/drift", params={"since": "2026-11-10T00:00:00", "until": "2026-11-01T00:00:00"}, headers=KEY)
        assert bad.status_code == 422 and "must be before until" in bad.json()["message"]
        assert c.get("/v1/drift", params={"since": "soon"}, headers=KEY).status_code == 422
        assert c.get("/v1/drift").status_code == 401
