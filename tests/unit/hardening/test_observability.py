"""Request ids, log lines that cannot be forged or leak tickets, JSON logs, Prometheus metrics, CORS."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.observability import JsonFormatter, RequestIdFilter, SafeFormatter
from tests.conftest import PRIVATE_MARKERS
from tests.unit.hardening.conftest import build_app, review_text
from triage.decisions.recorder import in_audit_sample
from triage.models.base import LoadedModel
from triage.settings import DecisionsSettings, OpsSettings, Settings
from triage.taxonomy import Policy

MARKER = PRIVATE_MARKERS[0]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Root logging through the production text formatter, at DEBUG, into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old)


def test_request_id_is_accepted_or_made_echoed_and_logged(client: TestClient, log_stream: io.StringIO) -> None:
    r = client.post("/v1/score", json={"tickets": [{"id": "A", "text": "hello"}]},
                    headers={"X-Request-ID": "req-abc-123"})
    assert r.headers["x-request-id"] == "req-abc-123"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32
    forged = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert forged != "bad id\twith spaces" and len(forged) == 32
    lines = log_stream.getvalue().splitlines()
    assert any("[req-abc-123]" in line and "POST /v1/score 200" in line for line in lines)
    assert any(f"[{made}]" in line and "GET /healthz 200" in line for line in lines)
    assert client.post("/v1/score", content=b"x" * 20, headers={"X-Request-ID": "r-413"}).headers["x-request-id"]


def test_a_newline_cannot_forge_a_log_line(client: TestClient, log_stream: io.StringIO) -> None:
    r = client.post("/ml/setup", json={"project": "1\nCRITICAL forged: admin logged in"})
    assert r.status_code == 200
    assert not any(line.startswith("CRITICAL forged") for line in log_stream.getvalue().splitlines())
    assert "\\u000aCRITICAL forged" in log_stream.getvalue()


def test_no_ticket_text_or_metadata_in_logs_even_when_a_request_fails(
        settings: Settings, tiny_loaded: LoadedModel, policy: Policy, log_stream: io.StringIO) -> None:
    class Exploding:
        def __getattr__(self, name: str) -> object:
            return getattr(tiny_loaded.classifier, name)

        def predict(self, texts: list[str]) -> object:
            raise ValueError(f"cannot score {texts!r}")  # a message quoting the input, as libraries do

    broken = LoadedModel(Exploding(), "triage", "2", "champion", None, {})  # type: ignore[arg-type]
    good = build_app(settings, tiny_loaded, policy)
    with TestClient(good, raise_server_exceptions=False) as c:
        ok = c.post("/v1/score", json={"tickets": [{"id": "M1", "text": f"{review_text()} {MARKER}",
                                                    "metadata": {"note": MARKER}}]})
        assert ok.status_code == 200
        c.post("/v1/score", json={"tickets": [{"id": "M2", "text": MARKER + "\x00"}]})
        c.post("/ml/predict", json={"tasks": [{"id": 1, "data": {"text": MARKER}}]})
        c.app.state.review.sync_now()  # type: ignore[attr-defined]
    bad = build_app(settings.model_copy(update={"home": settings.home.parent / "h2"}), broken, policy)
    with TestClient(bad, raise_server_exceptions=False) as c:
        r = c.post("/v1/score", json={"tickets": [{"id": "M3", "text": MARKER}]})
        assert r.status_code == 500
        assert MARKER not in r.text
    text = log_stream.getvalue()
    assert "unhandled error on POST /v1/score" in text and "ValueError (message withheld)" in text
    assert MARKER not in text


def test_json_logs_one_object_per_line() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("a\nb",), None)
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) == {**json.loads(line), "level": "WARNING", "message": "hello a\\u000ab",
                                "request_id": "-"}


def test_metrics(client: TestClient) -> None:
    scored = client.post("/v1/score", json={"tickets": [{"id": "A", "text": review_text()},
                                                        {"id": "B", "text": "hello"}]}).json()["results"]
    client.post("/v1/score", json={"tickets": []})
    body = client.get("/metrics").text
    assert 'triage_http_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in body
    assert 'triage_http_requests_total{method="POST",route="/v1/score",status="422"} 1.0' in body
    assert 'triage_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/score"}' in body
    assert 'triage_tickets_scored_total{category=' in body and 'route="review"' in body
    assert 'triage_model_info{name="triage",version="1"} 1.0' in body
    assert "triage_review_outbox_failures_total 0.0" in body
    depth = {s.labels["state"]: s.value for f in text_string_to_metric_families(body)
             if f.name == "triage_review_outbox_items" for s in f.samples}
    # The review tickets, and any auto ticket in the decision log's random audit sample, reach the outbox.
    expected = sum(r["route"] == "review" or in_audit_sample(r["id"], DecisionsSettings().audit_rate) for r in scored)
    assert scored[0]["route"] == "review" and expected >= 1
    assert depth["waiting"] + depth["sent"] == expected and depth["rejected"] == 0


def test_cors_off_by_default_on_from_settings(client: TestClient, settings: Settings, tiny_loaded: LoadedModel,
                                              policy: Policy) -> None:
    pre = {"Origin": "https://console.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/score", headers=pre).headers
    on = settings.model_copy(update={"ops": OpsSettings(cors_origins=["https://console.example"])})
    with TestClient(build_app(on, tiny_loaded, policy)) as c:
        r = c.options("/v1/score", headers=pre)
        assert r.headers["access-control-allow-origin"] == "https://console.example"
        other = c.options("/v1/score", headers={**pre, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
