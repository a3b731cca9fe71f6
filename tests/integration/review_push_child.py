"""A `triage review push` stand-in for the kill -9 test: queue N hand-made review tickets, then deliver them."""

from __future__ import annotations

import sys
from pathlib import Path

from triage.adapters.labelstudio import LabelStudioBackend
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.settings import LabelStudioSettings
from triage.taxonomy import load_policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket


def main(url: str, token: str, outbox: str, title: str, n: int) -> None:
    settings = LabelStudioSettings(url=url, api_token=token, project_title=title, batch_size=10,
                                   request_timeout_s=2.0)
    svc = ReviewService(Outbox(Path(outbox)), LabelStudioBackend(url, token, timeout_s=2.0), load_policy(), settings)
    tickets = [ScoredTicket(
        ticket=Ticket(f"kill-{i}", f"ticket number {i}: please look at this message", {}),
        scores=Scores(categories={"spam": 0.5 + i / (4 * n), "fraud": 0.3},
                      severity={"none": 0.2, "low": 0.5, "medium": 0.3, "high": 0.0, "critical": 0.0}),
        decision=Decision(category="spam", severity="low", priority=0.4, route="review", reasons=("unsure",),
                          confidence=0.5),
    ) for i in range(n)]
    svc.enqueue(tickets, "triage-it", "kill-1")
    print("queued", flush=True)
    svc.sync_now()
    print("delivered", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
