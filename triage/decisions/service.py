"""The decision log assembled: store, background recorder and expert-outcome receiver, started and stopped as one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from triage.decisions.outcomes import Outcomes
from triage.decisions.recorder import Recorder
from triage.decisions.store import DecisionStore
from triage.review.service import ReviewService
from triage.settings import Settings
from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)


@dataclass
class DecisionLog:
    """Everything the API needs of the decision log."""

    store: DecisionStore
    recorder: Recorder
    outcomes: Outcomes

    def start(self) -> None:
        """Migrate the schema, join labels that were waiting for their decision, start the writer."""
        self.store.migrate()
        joined = self.store.join_pending_labels()
        if joined:
            log.info("decision log: joined %d waiting expert label(s) to their decisions", joined)
        self.recorder.start()

    def stop(self) -> None:
        """Write every queued decision, then release the database."""
        self.recorder.stop()
        self.store.close()


AUDIT_REASON = "random audit sample of automatic decisions: checked by a person"


def as_audit_items(items: Sequence[ScoredTicket]) -> list[ScoredTicket]:
    """Auto-routed tickets of the audit sample as review items (the review service queues only route 'review'
    and withdraws queued tickets a model routes automatically)."""
    return [replace(it, decision=replace(it.decision, route="review", reasons=(*it.decision.reasons, AUDIT_REASON)))
            for it in items]


def build_decision_log(settings: Settings, policy_version: str, review: ReviewService | None) -> DecisionLog | None:
    """The configured decision log (None when TRIAGE_DECISIONS__ENABLED=false), hooked into the review loop."""
    if not settings.decisions.enabled:
        return None
    store = DecisionStore(settings.decisions_url)
    outcomes = Outcomes(store)
    recorder = Recorder(store, settings.decisions, policy_version)
    if review is not None:
        service = review
        recorder.audit_sink = lambda items, name, version: service.enqueue(as_audit_items(items), name, version)
        review.on_label = outcomes.on_label
        review.on_retract = outcomes.on_retract
    return DecisionLog(store, recorder, outcomes)
