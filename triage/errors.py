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

    def __init__(self, reason: str, ticket_ids: Sequence[str]) -> None:
        self.reason = reason
        self.ticket_ids = list(ticket_ids)
        shown = ", ".join(self.ticket_ids[:20])
        more = f" and {len(self.ticket_ids) - 20} more" if len(self.ticket_ids) > 20 else ""
        super().__init__(f"{len(self.ticket_ids)} ticket(s) {reason}: {shown}{more}")
