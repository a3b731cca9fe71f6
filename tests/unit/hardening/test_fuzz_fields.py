"""Hypothesis puts hostile strings (lone surrogates, controls, any plane) into every field of every route."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.hardening.conftest import ERROR_KEYS

# Any code point, surrogates and controls included, weighted towards the troublemakers.
hostile = st.one_of(
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=8),
    st.text(st.characters(codec=None), min_size=0, max_size=40),
    st.text(st.characters(codec=None), min_size=1, max_size=3).map(lambda s: s * 3000),
)

Build = Callable[[str], tuple[str, Any, dict[str, str]]]
SECRET = {"X-Triage-Webhook-Secret": "dev-secret"}

FIELDS: dict[str, Build] = {
    "score.id": lambda s: ("/v1/score", {"tickets": [{"id": s, "text": "hello"}]}, {}),
    "score.text": lambda s: ("/v1/score", {"tickets": [{"id": "T-1", "text": s}]}, {}),
    "score.metadata.key": lambda s: ("/v1/score", {"tickets": [{"id": "T-1", "text": "hi", "metadata": {s: 1}}]}, {}),
    "score.metadata.value": lambda s: ("/v1/score",
                                       {"tickets": [{"id": "T-1", "text": "hi", "metadata": {"k": [s]}}]}, {}),
    "score.top-level-key": lambda s: ("/v1/score", {"tickets": [{"id": "T-1", "text": "hi"}], s: 1}, {}),
    "ml.predict.text": lambda s: ("/ml/predict", {"tasks": [{"id": 1, "data": {"text": s}}]}, {}),
    "ml.predict.task-id": lambda s: ("/ml/predict", {"tasks": [{"id": s, "data": {"text": "hi"}}]}, {}),
    "ml.predict.label_config": lambda s: ("/ml/predict", {"tasks": [], "label_config": s}, {}),
    "ml.predict.project": lambda s: ("/ml/predict", {"tasks": [], "project": s}, {}),
    "ml.setup.project": lambda s: ("/ml/setup", {"project": s}, {}),
    "ml.webhook.action": lambda s: ("/ml/webhook", {"action": s}, {}),
    "review.webhook.action": lambda s: ("/v1/review/webhook", {"action": s, "annotation": {"id": 1}}, SECRET),
    "review.webhook.result": lambda s: ("/v1/review/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1},
                                                               "task": {"id": 1, "data": {"text": s}},
                                                               "annotation": {"id": 1, "result": [{"value": s}]}},
                                        SECRET),
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_hostile_strings_in_every_field_never_500(client: TestClient, field: str) -> None:
    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(value=hostile)
    def check(value: str) -> None:
        path, body, headers = FIELDS[field](value)
        r = client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json",
                                                                           **headers})
        assert r.status_code < 500, (field, repr(value)[:80], r.text[:300])
        if r.status_code >= 400:
            assert set(r.json()) == ERROR_KEYS
            r.text.encode("utf-8")  # the body is valid UTF-8 (no lone surrogate echoed back)

    check()
