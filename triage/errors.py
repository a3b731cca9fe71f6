"""Domain exceptions: messages carry the offending values so the caller can act on them."""

from __future__ import annotations

from collections.abc import Sequence


class TriageError(Exception):
    """Base of every error the domain raises on purpose."""


class PolicyError(TriageError):
    """The policy file cannot be used; the message names the field and the reason."""


class DataError(TriageError):
    """A dataset or an import file cannot be read into examples."""


class ModelNotFoundError(TriageError):
    """No model is registered (or the alias points nowhere)."""


class InvalidTicketsError(TriageError):
    """One or more tickets cannot be scored; the message names them."""

    def __init__(self, reason: str, ticket_ids: Sequence[str], count: int | None = None) -> None:
        self.reason = reason
        self.ticket_ids = list(ticket_ids)
        n = len(self.ticket_ids) if count is None else count
        shown = ", ".join(self.ticket_ids[:20])
        more = f" and {len(self.ticket_ids) - 20} more" if len(self.ticket_ids) > 20 else ""
        super().__init__(f"{n} ticket(s) {reason}" + (f": {shown}{more}" if shown else ""))


class DuplicateTicketIdsError(InvalidTicketsError):
    """Two tickets of one request share an id (results and the review queue are keyed by id)."""


class ReviewError(TriageError):
    """The human-review queue cannot do what was asked."""


class ReviewBackendUnavailable(ReviewError):
    """Label Studio cannot be reached or timed out; queued items wait and delivery is retried."""


class ReviewBackendRejected(ReviewError):
    """Label Studio answered but refused the request (bad config, bad task); retrying will not help."""


class WebhookPayloadError(ReviewError):
    """A webhook body is not a Label Studio event this service understands; the message says what is off."""


class DecisionQueryError(TriageError):
    """An audit query of the decision log that cannot be answered as asked (bad cursor, period reversed, ...)."""
