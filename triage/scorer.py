"""Score tickets: validate, run the classifier, turn probabilities into scores and decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from triage.conformal import guarded_decision, points_from_card, prediction_set
from triage.errors import InvalidTicketsError
from triage.models.base import Classifier, Prediction
from triage.routing import decide
from triage.taxonomy import Policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket


@dataclass(frozen=True)
class TicketLimits:
    """What a batch of tickets may hold; the API documents the same numbers."""

    max_tickets: int = 256
    max_text_chars: int = 20_000


def validate_tickets(tickets: Sequence[Ticket], limits: TicketLimits) -> None:
    """Reject a batch that cannot be scored as a whole, naming every offending ticket."""
    if not tickets:
        raise InvalidTicketsError("were sent; at least 1 is required", [], count=0)
    if len(tickets) > limits.max_tickets:
        raise InvalidTicketsError(f"sent, over the limit of {limits.max_tickets} per request", [], count=len(tickets))
    dupes = sorted(i for i, n in Counter(t.id for t in tickets).items() if n > 1)
    if dupes:
        raise InvalidTicketsError("have duplicate ids (each id must be unique within a request)", dupes)
    empty = [t.id for t in tickets if not t.text.strip()]
    if empty:
        raise InvalidTicketsError("have empty or whitespace-only text", empty)
    long = [t.id for t in tickets if len(t.text) > limits.max_text_chars]
    if long:
        raise InvalidTicketsError(f"are over the {limits.max_text_chars:,}-character limit", long)


class Scorer:
    """Binds a classifier to a policy; the one place probabilities become decisions."""

    def __init__(self, classifier: Classifier, policy: Policy, limits: TicketLimits | None = None) -> None:
        self.classifier = classifier
        self.policy = policy
        self.limits = limits or TicketLimits()
        card = classifier.card
        known = set(policy.category_names)
        # A model trained for another policy may name categories this one dropped: score only shared ones.
        self._cat_idx = [j for j, c in enumerate(card.categories) if c in known]
        self._cat_names = [card.categories[j] for j in self._cat_idx]
        self._sev_names = list(card.severity_levels)
        self._thresholds = {k: v for k, v in card.thresholds.items() if k in known}
        self._points = {k: v for k, v in points_from_card(card.extra).items() if k in known}

    def decide(self, scores: Scores) -> Decision:
        """Route one ticket; with operating points on the card, auto only inside the precision guarantee."""
        if not self._points:
            return decide(scores, self.policy, self._thresholds)
        decision = guarded_decision(scores, self.policy, self._points, self._thresholds)
        chosen = prediction_set(scores.categories, self._points, self._thresholds)
        promised = {c: p.expected_precision for c in chosen if (p := self._points[c]).expected_precision is not None}
        return replace(decision, prediction_set=chosen, expected_precision=promised)

    def to_scores(self, prediction: Prediction) -> list[Scores]:
        """Wrap a prediction matrix as one Scores per row, names from the model card."""
        cats = np.asarray(prediction.categories)[:, self._cat_idx]
        sev = np.asarray(prediction.severity)
        return [
            Scores(
                categories={n: round(float(p), 6) for n, p in zip(self._cat_names, row, strict=True)},
                severity={n: round(float(p), 6) for n, p in zip(self._sev_names, srow, strict=True)},
            )
            for row, srow in zip(cats, sev, strict=True)
        ]

    def score(self, tickets: Sequence[Ticket], validate: bool = True) -> list[ScoredTicket]:
        """Scores and decisions for tickets, in their order."""
        if validate:
            validate_tickets(tickets, self.limits)
        prediction = self.classifier.predict([t.text for t in tickets])
        paths = [None] * len(tickets) if prediction.paths is None else [str(p) for p in prediction.paths]
        return [
            ScoredTicket(ticket=t, scores=s, decision=self.decide(s), path=path)
            for t, s, path in zip(tickets, self.to_scores(prediction), paths, strict=True)
        ]
