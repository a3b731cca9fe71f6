"""Score tickets: validate, run the classifier, turn probabilities into scores and decisions."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from triage.conformal import (
    SEVERE,
    assured_decision,
    clear_points_from_card,
    guarded_decision,
    looser_than_policy,
    points_from_card,
    prediction_set,
)
from triage.errors import DuplicateTicketIdsError, InvalidTicketsError
from triage.models.base import Classifier, Prediction
from triage.models.examples import head_status
from triage.routing import decide, percent
from triage.taxonomy import Policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket

log = logging.getLogger(__name__)


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
        raise DuplicateTicketIdsError("have duplicate ids (each id must be unique within a request)", dupes)
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
        self._clear = clear_points_from_card(card.extra)
        # A policy tightened after the fit: the card's looser points cannot keep its promises. A category without
        # its precision point is never asserted; one with a too-loose clear point is never auto-cleared.
        low_precision, too_loose = looser_than_policy(self._points, self._clear, policy)
        # The reason an auto-routed ticket gets when only a too-loose clear point (or severity guard) cleared it.
        self._loose_reasons = {
            name: f"{'severity' if name == SEVERE else name}: the model's auto-clear bound lets up to "
                  f"{percent(self._clear[name].max_miss)} skip review, the policy allows {percent(want)}; reviewed "
                  "until the model is trained again"
            for name, want in sorted(too_loose.items())}
        self._not_kept = {
            **{name: f"precision point fitted for {percent(self._points[name].target_precision)}, the policy asks "
                     f"{percent(policy.category(name).target_precision)}: its positives are reviewed"
               for name in sorted(low_precision)},
            **{name: f"auto-clear point lets up to {percent(self._clear[name].max_miss)} skip review, the policy "
                     f"allows {percent(want)}: not auto-cleared" for name, want in sorted(too_loose.items())},
        }
        self._points = {k: v for k, v in self._points.items() if k not in low_precision}
        for name, why in self._not_kept.items():
            log.warning("model card looser than policy %s for %s (%s) until the model is trained again",
                        policy.version, name, why)
        # Categories still growing from seed examples: their positives go to a person (triage/models/examples.py).
        self._young = {k: v for k, v in head_status(card).items() if k in known and v.get("always_review", True)}

    def decide(self, scores: Scores) -> Decision:
        """Route one ticket: inside the card's precision and auto-clear guarantees when it carries them."""
        if self._clear:
            return self._review_young(self._review_too_loose(
                assured_decision(scores, self.policy, self._points, self._clear, self._thresholds)), scores)
        if not self._points:
            return self._review_young(decide(scores, self.policy, self._thresholds), scores)
        decision = guarded_decision(scores, self.policy, self._points, self._thresholds)
        chosen = prediction_set(scores.categories, self._points, self._thresholds)
        promised = {c: p.expected_precision for c in chosen if (p := self._points[c]).expected_precision is not None}
        return self._review_young(replace(decision, prediction_set=chosen, expected_precision=promised), scores)

    def promises_not_kept(self) -> dict[str, str]:
        """The card's promises looser than the policy now asks, per category (or the severity guard), and how the
        scorer stays on the safe side of each until the model is trained again."""
        return dict(self._not_kept)

    def _review_too_loose(self, decision: Decision) -> Decision:
        """Review an auto-routed ticket that relied on an auto-clear point looser than the policy now allows."""
        if decision.route != "auto" or not self._loose_reasons:
            return decision
        reasons = [why for name, why in self._loose_reasons.items() if name not in decision.prediction_set]
        if not reasons:
            return decision
        return replace(decision, route="review", reasons=tuple(reasons))

    def _review_young(self, decision: Decision, scores: Scores) -> Decision:
        """Send a ticket to review when a category without a trained head says yes, and say what it runs on."""
        reasons = []
        for name, status in self._young.items():
            p = scores.categories.get(name, 0.0)
            if p < self._thresholds.get(name, self.policy.category(name).threshold):
                continue
            if status.get("runs_on") == "examples":
                reasons.append(f"{name} runs on seed examples only (no trained head yet): similarity score "
                               f"{100 * p:.0f}%, reviewed by a person")
            else:
                reasons.append(f"{name} runs on a light head from {status.get('labels', 0)} expert labels, below its "
                               f"precision target: score {100 * p:.0f}%, reviewed by a person")
        if not reasons:
            return decision
        kept = [r for r in decision.reasons if not r.startswith("confident ")] if decision.route == "auto" else \
            list(decision.reasons)
        return replace(decision, route="review", reasons=(*kept, *reasons))

    def to_scores(self, prediction: Prediction) -> list[Scores]:
        """Wrap a prediction matrix as one Scores per row, names from the model card."""
        cats = np.asarray(prediction.categories, dtype=np.float64)[:, self._cat_idx].tolist()  # Python floats:
        sev = np.asarray(prediction.severity, dtype=np.float64).tolist()  # rounded without numpy scalars
        return [
            Scores(
                categories={n: round(p, 6) for n, p in zip(self._cat_names, row, strict=True)},
                severity={n: round(p, 6) for n, p in zip(self._sev_names, srow, strict=True)},
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
