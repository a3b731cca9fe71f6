"""Expert outcomes: labels coming back from review, joined to the decisions they judged."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from triage.decisions.store import DecisionStore, ExpertLabel, parse_time, utcnow
from triage.review.outbox import AnnotationRecord

log = logging.getLogger(__name__)


def expert_label(rec: AnnotationRecord) -> ExpertLabel:
    """The decision log's view of one stored annotation (skipped ones count as deleted: they judge nothing)."""
    when = parse_time(rec.created_at) or parse_time(rec.updated_at) or utcnow()
    return ExpertLabel(annotation_id=rec.annotation_id, ticket_id=rec.ticket_id, annotator=rec.annotator,
                       categories=tuple(rec.categories), severity=rec.severity, labelled_at=when, via=rec.via,
                       deleted=rec.deleted or rec.was_cancelled)


class Outcomes:
    """Receives the review service's annotations and retractions and keeps them in the decision log."""

    def __init__(self, store: DecisionStore) -> None:
        self.store = store

    def on_label(self, rec: AnnotationRecord) -> None:
        """One annotation stored by the review service (webhook or sync)."""
        try:
            self.store.record_label(expert_label(rec))
        except Exception as err:  # the review loop must never fail because the log is unavailable
            log.warning("expert label %s not joined to the decision log: %s", rec.annotation_id, err)

    def on_retract(self, annotation_ids: Sequence[int]) -> None:
        """Annotations deleted in the labeling tool."""
        try:
            self.store.retract_labels(annotation_ids)
        except Exception as err:
            log.warning("retraction of %d label(s) not applied to the decision log: %s", len(annotation_ids), err)
