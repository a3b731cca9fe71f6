"""Hostile inputs from an attacker's notebook: every one answers 4xx with the project's error body, never 500.

Each case is (route, raw body bytes, headers, expected status); the review queue is on (real SQLite outbox), since
a lone surrogate used to reach it and fail the whole request.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.unit.hardening.conftest import ERROR_KEYS, review_text

JSON = {"content-type": "application/json"}
SECRET = {"X-Triage-Webhook-Secret": "dev-secret"}


def _score(*tickets: dict) -> bytes:
    return json.dumps({"tickets": list(tickets)}).encode()


def _t(id: str = "T-1", text: str = "hello there", **extra: object) -> dict:
    return {"id": id, "text": text, **extra}


def _raw(s: str) -> bytes:
    """JSON text as typed by hand (so escapes like \\ud800 reach the server as written)."""
    return s.encode()


def _deep(levels: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(levels):
        node = {"n": node}
    return node


CASES: list[tuple[str, str, bytes, dict[str, str], int]] = [
    # lone surrogates in every field, as JSON escapes
    ("surrogate-high-text", "/v1/score", _raw('{"tickets":[{"id":"T-1","text":"hi \\ud800 there"}]}'), JSON, 422),
    ("surrogate-low-text", "/v1/score", _raw('{"tickets":[{"id":"T-1","text":"\\udfff"}]}'), JSON, 422),
    ("surrogate-id", "/v1/score", _raw('{"tickets":[{"id":"T\\ud800","text":"hello"}]}'), JSON, 422),
    ("surrogate-meta-key", "/v1/score", _raw('{"tickets":[{"id":"T-1","text":"hi","metadata":{"k\\ud800":1}}]}'),
     JSON, 422),
    ("surrogate-meta-value", "/v1/score", _raw('{"tickets":[{"id":"T-1","text":"hi","metadata":{"k":"\\udc00"}}]}'),
     JSON, 422),
    ("surrogate-meta-nested", "/v1/score",
     _raw('{"tickets":[{"id":"T-1","text":"hi","metadata":{"a":{"b":["\\ud83d"]}}}]}'), JSON, 422),
    ("surrogate-second-ticket", "/v1/score",
     _raw('{"tickets":[{"id":"ok","text":"fine"},{"id":"T-2","text":"\\ud800"}]}'), JSON, 422),
    ("surrogate-top-key", "/v1/score", _raw('{"tickets\\ud800":[]}'), JSON, 422),
    # control characters
    ("newline-in-id", "/v1/score", _score(_t(id="T-1\nINFO forged line")), JSON, 422),
    ("nul-in-id", "/v1/score", _score(_t(id="T\x00")), JSON, 422),
    # size
    ("text-over-limit", "/v1/score", _score(_t(text="x" * 20_001)), JSON, 422),
    ("too-many-tickets", "/v1/score", _score(*[_t(id=f"T{i}") for i in range(257)]), JSON, 422),
    ("id-too-long", "/v1/score", _score(_t(id="i" * 257)), JSON, 422),
    ("metadata-too-big", "/v1/score", _score(_t(metadata={"blob": "m" * 9000})), JSON, 422),
    ("metadata-too-many-keys", "/v1/score", _score(_t(metadata={f"k{i}": i for i in range(65)})), JSON, 422),
    ("metadata-too-deep", "/v1/score", _score(_t(metadata=_deep(6))), JSON, 422),
    ("body-over-limit", "/v1/score", _score(_t(text="y" * (9 * 1024 * 1024))), JSON, 413),
    ("json-nesting-bomb", "/v1/score", b"[" * 100_000, JSON, 400),
    # wrong types and shapes
    ("tickets-not-list", "/v1/score", b'{"tickets":"hello"}', JSON, 422),
    ("ticket-is-string", "/v1/score", b'{"tickets":["hello"]}', JSON, 422),
    ("text-is-number", "/v1/score", _score(_t(text=42)), JSON, 422),  # type: ignore[arg-type]
    ("id-is-null", "/v1/score", _score(_t(id=None)), JSON, 422),  # type: ignore[arg-type]
    ("metadata-is-list", "/v1/score", _score(_t(metadata=[1, 2])), JSON, 422),
    ("body-is-array", "/v1/score", b"[]", JSON, 422),
    ("body-is-string", "/v1/score", b'"tickets"', JSON, 422),
    ("body-is-null", "/v1/score", b"null", JSON, 422),
    ("unknown-field", "/v1/score", _score(_t(colour="red")), JSON, 422),
    ("missing-text", "/v1/score", b'{"tickets":[{"id":"T-1"}]}', JSON, 422),
    ("missing-id", "/v1/score", b'{"tickets":[{"text":"hi"}]}', JSON, 422),
    ("no-tickets", "/v1/score", b'{"tickets":[]}', JSON, 422),
    ("duplicate-ids", "/v1/score", _score(_t(), _t()), JSON, 409),
    ("empty-text", "/v1/score", _score(_t(text="")), JSON, 422),
    ("whitespace-text", "/v1/score", _score(_t(text=" \n\t ")), JSON, 422),
    # encodings and syntax
    ("invalid-utf8", "/v1/score", b'{"tickets":[{"id":"T-1","text":"\xff\xfe"}]}', JSON, 400),
    ("truncated-json", "/v1/score", b'{"tickets":[{"id":"T-1","text":', JSON, 422),
    ("nan-in-metadata", "/v1/score", b'{"tickets":[{"id":"T-1","text":"hi","metadata":{"x":NaN}}]}', JSON, 422),
    ("infinity-in-metadata", "/v1/score", b'{"tickets":[{"id":"T-1","text":"hi","metadata":{"x":Infinity}}]}',
     JSON, 422),
    ("empty-body", "/v1/score", b"", JSON, 422),
    # Label Studio ML backend
    ("ml-body-over-limit", "/ml/predict",
     json.dumps({"tasks": [{"id": i, "data": {"text": "z" * 1000}} for i in range(9000)]}).encode(), JSON, 413),
    ("ml-too-many-tasks", "/ml/predict",
     json.dumps({"tasks": [{"id": i, "data": {"text": "hi"}} for i in range(257)]}).encode(), JSON, 422),
    ("ml-text-over-limit", "/ml/predict", json.dumps({"tasks": [{"id": 1, "data": {"text": "x" * 20_001}}]}).encode(),
     JSON, 422),
    ("ml-surrogate-text", "/ml/predict", _raw('{"tasks":[{"id":1,"data":{"text":"\\ud800"}}]}'), JSON, 422),
    ("ml-deep-json", "/ml/predict", json.dumps({"tasks": [], "params": _deep(40)}).encode(), JSON, 422),
    ("ml-tasks-not-list", "/ml/predict", b'{"tasks":"all"}', JSON, 422),
    ("ml-task-without-text", "/ml/predict", b'{"tasks":[{"id":1,"data":{}}]}', JSON, 422),
    ("ml-invalid-utf8", "/ml/predict", b'{"tasks":[{"data":{"text":"\xc3\x28"}}]}', JSON, 400),
    ("ml-wrong-label-config", "/ml/predict", b'{"tasks":[{"id":1,"data":{"text":"hi"}}],"label_config":"<View/>"}',
     JSON, 409),
    ("ml-setup-surrogate", "/ml/setup", _raw('{"project":"\\ud800"}'), JSON, 422),
    ("ml-setup-array", "/ml/setup", b"[1,2]", JSON, 422),
    ("ml-webhook-surrogate", "/ml/webhook", _raw('{"action":"\\udfff"}'), JSON, 422),
    ("ml-webhook-not-object", "/ml/webhook", b'"ANNOTATION_CREATED"', JSON, 422),
    # the review webhook, with its secret
    ("webhook-surrogate", "/v1/review/webhook", _raw('{"action":"ANNOTATION_CREATED","annotation":{"x":"\\ud800"}}'),
     {**JSON, **SECRET}, 422),
    ("webhook-not-object", "/v1/review/webhook", b"[]", {**JSON, **SECRET}, 422),
    ("webhook-not-an-event", "/v1/review/webhook", b'{"hello":"world"}', {**JSON, **SECRET}, 400),
    ("webhook-deep", "/v1/review/webhook", json.dumps(_deep(40)).encode(), {**JSON, **SECRET}, 422),
    ("webhook-secret-in-query", "/v1/review/webhook?secret=dev-secret", b'{"action":"ANNOTATION_CREATED"}', JSON, 401),
    ("webhook-invalid-utf8", "/v1/review/webhook", b'{"action":"\xff"}', {**JSON, **SECRET}, 400),
]


# Control characters in free-form JSON (metadata, Label Studio bodies) are accepted: stored as JSON, never logged.
# In texts they are read as spaces (real exports hold form feeds and C1 mojibake); a lone surrogate is refused.
ACCEPTED: list[tuple[str, str, bytes, dict[str, str], int]] = [
    ("nul-in-text", "/v1/score", _score(_t(text="a\x00b")), JSON, 200),
    ("escape-in-text", "/v1/score", _score(_t(text="\x1b[31mred")), JSON, 200),
    ("c1-in-text", "/v1/score", _score(_t(text="next\x85line")), JSON, 200),
    ("del-in-text", "/v1/score", _score(_t(text="a\x7f")), JSON, 200),
    ("ml-control-in-data", "/ml/predict", json.dumps({"tasks": [{"id": 1, "data": {"text": "a\x00"}}]}).encode(),
     JSON, 200),
    ("escape-in-meta-key", "/v1/score", _score(_t(metadata={"k\x1b": 1})), JSON, 200),
    ("newline-in-meta-key", "/v1/score", _score(_t(metadata={"k\nINFO": 1})), JSON, 200),
    ("nul-in-meta-value", "/v1/score", _score(_t(metadata={"k": "v\x00"})), JSON, 200),
    ("ml-setup-escape", "/ml/setup", _score(_t(text="\x1b]0;pwned\x07")), JSON, 200),
]


@pytest.mark.parametrize("name, path, body, headers, expected", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_control_characters_in_free_form_json_are_accepted(client: TestClient, name: str, path: str, body: bytes,
                                                           headers: dict[str, str], expected: int) -> None:
    assert client.post(path, content=body, headers=headers).status_code == expected


def test_control_characters_in_a_text_are_read_as_spaces(client: TestClient) -> None:
    plain = client.post("/v1/score", json={"tickets": [{"id": "A", "text": "win cash now"}]}).json()
    noisy = client.post("/v1/score", json={"tickets": [{"id": "A", "text": "win\x0ccash\x85now"}]}).json()
    assert noisy["results"][0]["categories"] == plain["results"][0]["categories"]
    only = client.post("/v1/score", json={"tickets": [{"id": "A", "text": "\x00\x01"}]})
    assert only.status_code == 422 and "whitespace" in only.json()["message"]


def test_there_are_at_least_57_cases() -> None:
    assert len(CASES) >= 57
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name, path, body, headers, expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_gets_a_4xx_with_the_error_body(client: TestClient, name: str, path: str, body: bytes,
                                                      headers: dict[str, str], expected: int) -> None:
    r = client.post(path, content=body, headers=headers)
    assert r.status_code == expected, r.text[:500]
    out = r.json()
    assert set(out) == ERROR_KEYS
    assert out["message"]
    assert "Traceback" not in r.text


def test_a_bad_ticket_names_its_index_and_field(client: TestClient) -> None:
    r = client.post("/v1/score", content=_raw('{"tickets":[{"id":"ok","text":"fine"},{"id":"T-2","text":"a\\ud800"}]}'),
                    headers=JSON)
    body = r.json()
    assert r.status_code == 422
    assert body["ticket_ids"] == ["T-2"]
    assert any(f.startswith("tickets.1.text:") and "lone surrogate U+D800 at position 1" in f for f in body["fields"])


def test_a_bad_id_is_escaped_in_the_error_body(client: TestClient) -> None:
    r = client.post("/v1/score", content=_raw('{"tickets":[{"id":"T\\ud800","text":"fine"}]}'), headers=JSON)
    assert r.status_code == 422
    assert r.json()["ticket_ids"] == ["T\\ud800"]  # escaped, not the raw surrogate (not encodable as UTF-8)


def test_good_tickets_still_reach_review_after_hostile_ones(client: TestClient) -> None:
    for _, path, body, headers, _ in CASES[:8]:
        client.post(path, content=body, headers=headers)
    r = client.post("/v1/score", json={"tickets": [_t("R-1", review_text(), metadata={"channel": "sms"})]})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["route"] == "review"
    review = client.app.state.review  # type: ignore[attr-defined]
    assert review.outbox.queued("R-1") is not None


def test_other_methods_and_paths_answer_with_the_error_body(client: TestClient) -> None:
    for r, status in ((client.put("/v1/score", json={}), 405), (client.get("/nowhere"), 404),
                      (client.post("/v1/score", content=b"tickets=1",
                                   headers={"content-type": "application/x-www-form-urlencoded"}), 422)):
        assert r.status_code == status
        assert set(r.json()) == ERROR_KEYS
