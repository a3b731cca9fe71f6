"""Overload: a full queue answers 429 with Retry-After; a passed deadline answers 503 and is never scored."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.overload import Admission, OverloadedError
from triage.models.base import LoadedModel, ModelCard, Prediction
from triage.settings import OverloadSettings, ServingSettings, Settings


class SlowClassifier:
    """Sleeps `delay_s` per call and records every text it scored."""

    def __init__(self, delay_s: float) -> None:
        self.card = ModelCard("fake", ["spam"], ["none", "low", "medium", "high", "critical"], "default", "1", "x")
        self.delay_s = delay_s
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> Prediction:
        time.sleep(self.delay_s)
        with self.lock:
            self.seen.extend(texts)
        return Prediction(np.full((len(texts), 1), 0.9), np.tile([1.0, 0, 0, 0, 0], (len(texts), 1)))

    def save(self, directory: Path) -> None:
        self.card.write(directory)


class Source:
    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def current_version(self) -> str:
        return self.loaded.version

    def load(self) -> LoadedModel:
        return self.loaded


def _client(settings: Settings, model: SlowClassifier, **overload: float) -> TestClient:
    s = settings.model_copy(update={
        "serving": ServingSettings(microbatch_max=1, model_workers=1, microbatch_wait_ms=0.0),
        "overload": OverloadSettings(**overload),  # type: ignore[arg-type]
    })
    return TestClient(create_app(s, source=Source(LoadedModel(model, "triage", "1", "champion", None, {}))))


def one(text: str) -> dict:
    return {"tickets": [{"id": text, "text": text}]}


@pytest.fixture
def slow() -> SlowClassifier:
    return SlowClassifier(delay_s=0.4)


def test_admission_counts_and_releases() -> None:
    gate = Admission(max_pending_tickets=3, retry_after_s=2)
    with gate.admit(2):
        refused = r"2 tickets are waiting .* adds 2, over the limit of 3; retry after 2"
        with pytest.raises(OverloadedError, match=refused), gate.admit(2):
            pass
        with gate.admit(1):
            assert gate.pending == 3
    assert gate.pending == 0 and gate.refused == 1
    with gate.admit(10):  # larger than the limit, but the queue is empty: admitted, never starved
        assert gate.pending == 10


def test_queue_budget_refuses_by_expected_wait_and_learns_the_cost() -> None:
    gate = Admission(max_pending_tickets=1000, retry_after_s=1, queue_budget_ms=100, budget_floor_tickets=5)
    with gate.admit(1):
        pass
    assert gate.ticket_cost_s is not None and gate.ticket_cost_s < 0.05  # measured: latency over the queue length
    gate.ticket_cost_s = 0.02  # say each queued ticket holds a newcomer up 20 ms
    # 0 ahead: admitted whatever its size; then 4 ahead = 80 ms: within the budget
    with gate.admit(4), gate.admit(1):
        assert not gate.full()
        with gate.admit(200):  # 5 ahead = 100 ms: its own 200 tickets do not count against the budget
            assert gate.full()
            over = r"expected to wait \d+ ms, over the queue budget of 100 ms"
            with pytest.raises(OverloadedError, match=over), gate.admit(1):
                pass
    assert gate.pending == 0 and gate.refused == 1
    off = Admission(max_pending_tickets=1000, queue_budget_ms=0, budget_floor_tickets=1)
    off.ticket_cost_s = 10.0
    with off.admit(5):
        assert not off.full()  # budget 0: the ticket limit alone
    few = Admission(max_pending_tickets=1000, queue_budget_ms=10, budget_floor_tickets=16)
    few.ticket_cost_s = 10.0
    with few.admit(15):
        assert not few.full()  # under the floor: a few clients are never refused by the budget
        with few.admit(1):
            assert few.full()


def test_full_queue_answers_429_with_retry_after(settings: Settings, slow: SlowClassifier) -> None:
    with _client(settings, slow, max_pending_tickets=1, retry_after_s=3) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/score", json=one("first"))
        time.sleep(0.15)  # the first request is inside the model call
        started = time.perf_counter()
        second = client.post("/v1/score", json=one("second"))
        assert time.perf_counter() - started < 0.3  # refused at once, not after the queue drained
        assert second.status_code == 429
        assert second.headers["Retry-After"] == "3"
        body = second.json()
        assert body["error"] == "overloaded"
        assert "1 tickets are waiting for the model" in body["message"] and "retry after 3 s" in body["message"]
        assert first.result().status_code == 200
        assert client.post("/v1/score", json=one("third")).status_code == 200  # places are given back
    assert slow.seen == ["first", "third"]


def test_full_queue_refuses_before_parsing_the_body(settings: Settings, slow: SlowClassifier) -> None:
    with _client(settings, slow, max_pending_tickets=1) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/score", json=one("first"))
        time.sleep(0.15)
        r = client.post("/v1/score", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 429  # not 422: the body was never read
        assert r.headers["Retry-After"] == "1" and r.json()["error"] == "overloaded"
        assert client.get("/healthz").status_code == 200  # only scoring is shed
        assert first.result().status_code == 200
        assert client.post("/v1/score", content=b"{not json",
                           headers={"Content-Type": "application/json"}).status_code == 422


def test_deadline_passes_while_queued_503_and_never_scored(settings: Settings, slow: SlowClassifier) -> None:
    with _client(settings, slow, max_pending_tickets=10) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/score", json=one("first"))
        time.sleep(0.1)
        started = time.perf_counter()
        late = client.post("/v1/score", json=one("late"), headers={"X-Request-Timeout-Ms": "100"})
        waited = time.perf_counter() - started
        assert late.status_code == 503
        assert late.json()["error"] == "deadline_exceeded"
        assert "not scored within the request deadline of 100 ms" in late.json()["message"]
        assert waited < 0.3  # answered at the deadline, not when the model got round to it
        assert first.result().status_code == 200
        time.sleep(0.5)  # the batcher has picked up whatever was queued by now
    assert slow.seen == ["first"]


def test_default_deadline_from_settings(settings: Settings) -> None:
    with _client(settings, SlowClassifier(delay_s=0.3), request_timeout_ms=50) as client:
        r = client.post("/v1/score", json=one("slow"))
        assert r.status_code == 503
        assert "deadline of 50 ms" in r.json()["message"]
        ok = client.post("/v1/score", json=one("patient"), headers={"X-Request-Timeout-Ms": "2000"})
        assert ok.status_code == 200


@pytest.mark.parametrize("value", ["0", "-5", "soon", "600001"])
def test_bad_timeout_header_is_422(settings: Settings, value: str) -> None:
    with _client(settings, SlowClassifier(delay_s=0.0)) as client:
        r = client.post("/v1/score", json=one("x"), headers={"X-Request-Timeout-Ms": value})
        assert r.status_code == 422
        assert "x-request-timeout-ms" in r.json()["message"].lower()




def test_the_deadline_header_is_documented_with_its_bounds(settings: Settings) -> None:
    with _client(settings, SlowClassifier(delay_s=0.0)) as client:
        params = client.get("/openapi.json").json()["paths"]["/v1/score"]["post"]["parameters"]
        ok = client.post("/v1/score", json=one("edge"), headers={"X-Request-Timeout-Ms": "600000"})
    header = next(p for p in params if p["name"] == "x-request-timeout-ms")
    assert header["in"] == "header" and header["required"] is False
    assert (header["schema"]["minimum"], header["schema"]["maximum"]) == (1, 600_000)
    assert ok.status_code == 200  # the largest documented value is accepted


def test_budget_floor_from_settings(settings: Settings, slow: SlowClassifier) -> None:
    with _client(settings, slow, queue_budget_ms=100, budget_floor_tickets=1) as client, \
            ThreadPoolExecutor(2) as pool:
        assert client.post("/v1/score", json=one("learn")).status_code == 200  # measures ~0.4 s per ticket
        first = pool.submit(client.post, "/v1/score", json=one("first"))
        time.sleep(0.15)
        r = client.post("/v1/score", json=one("second"))  # one ticket ahead, ~400 ms over a 100 ms budget
        assert r.status_code == 429
        assert "over the queue budget of 100 ms" in r.json()["message"]
        assert first.result().status_code == 200
    assert slow.seen == ["learn", "first"]
