"""Shared pieces for the review unit tests: a policy, scored tickets, a service on the in-memory double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from triage.review.memory import InMemoryReviewBackend
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import LabelStudioSettings
from triage.taxonomy import Policy, load_policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


def scored(ticket_id: str, confidence: float, route: str = "review", category: str = "spam",
           text: str | None = None) -> ScoredTicket:
    """A hand-made scored ticket (the scorer is not under test here)."""
    return ScoredTicket(
        ticket=Ticket(ticket_id, text or f"text of {ticket_id}", {"channel": "sms"}),
        scores=Scores(categories={"spam": 0.6, "fraud": 0.55, "hate": 0.01},
                      severity={"none": 0.2, "low": 0.5, "medium": 0.3, "high": 0.0, "critical": 0.0}),
        decision=Decision(category=category, severity="low", priority=0.4, route=route,  # type: ignore[arg-type]
                          reasons=("unsure about spam",), confidence=confidence),
    )


@pytest.fixture
def backend() -> InMemoryReviewBackend:
    return InMemoryReviewBackend()


@pytest.fixture
def settings() -> LabelStudioSettings:
    return LabelStudioSettings(batch_size=7, backoff_initial_s=0.01, backoff_max_s=0.05, sync_interval_s=0.05,
                               pull_interval_s=0, webhook_url="http://127.0.0.1:1/v1/review/webhook")


@pytest.fixture
def service(tmp_path: Path, backend: InMemoryReviewBackend, policy: Policy,
            settings: LabelStudioSettings) -> Iterator[ReviewService]:
    svc = ReviewService(Outbox(tmp_path / "review.db"), backend, policy, settings)
    yield svc
    svc.stop()
    svc.outbox.close()
