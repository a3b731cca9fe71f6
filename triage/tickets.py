"""Domain types of the scoring flow: a ticket in, its scores, and the routing decision out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Route = Literal["auto", "review"]
NO_CATEGORY = "none"


@dataclass(frozen=True)
class Ticket:
    """A report to triage, as the ticket system sent it."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scores:
    """Calibrated probabilities for one ticket: per category, and over the ordered severity levels."""

    categories: Mapping[str, float]
    severity: Mapping[str, float]


@dataclass(frozen=True)
class Decision:
    """What happens to a ticket: its top category, severity, priority, route and the reasons."""

    category: str
    severity: str
    priority: float
    route: Route
    reasons: tuple[str, ...]
    confidence: float
    # Categories asserted with a validated precision guarantee, and the precision promised at each.
    prediction_set: tuple[str, ...] = ()
    expected_precision: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredTicket:
    """A ticket with its scores and decision, as it leaves the scorer."""

    ticket: Ticket
    scores: Scores
    decision: Decision
    path: str | None = None  # 'fast' or 'full' when a cascade scored it
