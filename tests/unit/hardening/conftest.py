"""An API with the tiny model and a real SQLite outbox on the in-memory Label Studio double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.unit.serving.test_api import StaticSource
from triage.models.base import LoadedModel
from triage.review.memory import InMemoryReviewBackend
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import LabelStudioSettings, Settings
from triage.taxonomy import Policy

ERROR_KEYS = {"error", "message", "ticket_ids", "fields"}


def review_settings() -> LabelStudioSettings:
    return LabelStudioSettings(backoff_initial_s=0.01, backoff_max_s=0.05, sync_interval_s=0.05, pull_interval_s=0,
                               webhook_url="http://127.0.0.1:1/v1/review/webhook")


def build_app(settings: Settings, loaded: LoadedModel | None, policy: Policy,
              outbox: Outbox | None = None) -> FastAPI:
    """The real app; its review service uses `outbox` (default: SQLite in the settings' home) and the double."""
    app = create_app(settings, source=StaticSource(loaded))
    box = outbox or Outbox(settings.home / "review.db")
    app.state.review = ReviewService(box, InMemoryReviewBackend(), policy, review_settings())
    return app


@pytest.fixture
def app(settings: Settings, tiny_loaded: LoadedModel, policy: Policy) -> FastAPI:
    return build_app(settings, tiny_loaded, policy)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def review_text() -> str:
    """A text the tiny model routes to review (asserted where it matters)."""
    return "maybe you should watch out, people like you get hurt"


@pytest.fixture
def outbox_path(settings: Settings) -> Path:
    return settings.home / "review.db"
