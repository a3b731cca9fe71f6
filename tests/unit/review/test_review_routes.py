"""The webhook receiver and status route: authentication, bad bodies, recording only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving import errors
from serving.routes import review
from tests.unit.review.conftest import scored
from triage.review.annotations import result_for
from triage.review.memory import InMemoryReviewBackend, webhook_payload
from triage.review.service import ReviewService
from triage.settings import Settings

HEADER = "X-Triage-Webhook-Secret"


@pytest.fixture
def client(service: ReviewService) -> Iterator[TestClient]:
    app = FastAPI()
    errors.install(app)
    app.state.settings = Settings(api_keys=[])
    app.state.review = service
    app.include_router(review.router)
    with TestClient(app) as c:
        yield c


def _event(service: ReviewService, backend: InMemoryReviewBackend) -> dict:
    service.enqueue([scored("a", 0.4)], "m", "v1")
    service.sync_now()
    pid = next(iter(backend.projects))
    task = next(iter(backend.projects[pid].tasks))
    return webhook_payload("ANNOTATION_CREATED", backend.annotate(task, "3", result_for(["spam"], "low")), pid)


def test_records_an_event_with_the_secret(client: TestClient, service: ReviewService,
                                          backend: InMemoryReviewBackend) -> None:
    r = client.post("/v1/review/webhook", json=_event(service, backend), headers={HEADER: "dev-secret"})
    assert r.status_code == 200
    assert r.json() == {"action": "ANNOTATION_CREATED", "outcome": "created"}
    assert service.status()["annotations"] == 1


def test_secret_in_the_query_is_refused(client: TestClient, service: ReviewService,
                                        backend: InMemoryReviewBackend) -> None:
    r = client.post("/v1/review/webhook?secret=dev-secret", json=_event(service, backend))
    assert r.status_code == 401
    assert "missing webhook secret" in r.json()["message"]
    assert service.status()["annotations"] == 0


@pytest.mark.parametrize("headers, message", [({}, "missing webhook secret"), ({HEADER: "nope"}, "wrong")])
def test_without_the_right_secret_401_and_nothing_recorded(client: TestClient, service: ReviewService,
                                                           backend: InMemoryReviewBackend, headers: dict,
                                                           message: str) -> None:
    r = client.post("/v1/review/webhook", json=_event(service, backend), headers=headers)
    assert r.status_code == 401
    assert message in r.json()["message"]
    assert service.status()["annotations"] == 0


def test_a_bad_event_is_400_with_the_reason(client: TestClient) -> None:
    r = client.post("/v1/review/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 1}},
                    headers={HEADER: "dev-secret"})
    assert r.status_code == 400
    assert "no 'task' with 'data'" in r.json()["message"]


def test_a_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    r = client.post("/v1/review/webhook", json=[1, 2], headers={HEADER: "dev-secret"})
    assert r.status_code == 422


def test_status_counts(client: TestClient, service: ReviewService) -> None:
    service.enqueue([scored("a", 0.4), scored("b", 0.5)], "m", "v1")
    body = client.get("/v1/review/status").json()
    assert (body["waiting"], body["sent"], body["annotations"]) == (2, 0, 0)
    assert body["agreement"]["tasks"] == 0
    service.enqueue([scored("a", 0.4, text="another text under the same id")], "m", "v1")
    body = client.get("/v1/review/status").json()
    assert body["id_conflicts"] == 1
    assert (body["annotations_rejected"], body["adjudication_waiting"], body["escalated_tickets"]) == (0, 0, 0)


def test_disabled_review_is_503() -> None:
    app = FastAPI()
    errors.install(app)
    app.state.settings = Settings(api_keys=[])
    app.state.review = None
    app.include_router(review.router)
    with TestClient(app) as c:
        r = c.post("/v1/review/webhook", json={"action": "X"}, headers={HEADER: "dev-secret"})
    assert r.status_code == 503 and "disabled" in r.json()["message"]
