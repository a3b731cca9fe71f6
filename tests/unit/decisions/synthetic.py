"""A reproducible decision log over several weeks with expert labels, for report, drift and database tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from triage.decisions.recorder import Recorder
from triage.decisions.store import DecisionStore, ExpertLabel
from triage.settings import DecisionsSettings
from triage.taxonomy import Policy
from triage.tickets import Decision, ScoredTicket, Scores, Ticket

START = datetime(2026, 10, 5)
LEVELS = ("none", "low", "medium", "high", "critical")


def fill(store: DecisionStore, policy: Policy, n: int = 1200, weeks: int = 4, seed: int = 0) -> datetime:
    """Write `n` decisions over `weeks` weeks (spam rising in the last week) and expert labels for a sample;
    returns the end of the period."""
    rng = np.random.default_rng(seed)
    cats = [*policy.category_names, "none"]
    rec = Recorder(store, DecisionsSettings(audit_rate=0.3), policy.version)
    labels: list[ExpertLabel] = []
    aid = 0
    for i in range(n):
        at = START + timedelta(seconds=float(rng.uniform(0, weeks * 7 * 86400)))
        late = at >= START + timedelta(days=7 * (weeks - 1))
        p = np.ones(len(cats))
        p[cats.index("spam")] = 6.0 if late else 2.0
        p[cats.index("none")] = 4.0
        cat = str(rng.choice(cats, p=p / p.sum()))
        sev = str(rng.choice(LEVELS, p=[0.3, 0.3, 0.25, 0.1, 0.05]))
        route = "review" if sev in ("high", "critical") or rng.random() < 0.35 else "auto"
        scores = {c: float(rng.uniform(0.6, 0.99) if c == cat else rng.uniform(0.0, 0.3)) for c in cats[:-1]}
        item = ScoredTicket(
            Ticket(f"T-{i}", "x" * int(rng.integers(10, 300)), {"source": str(rng.choice(["web", "sms", "app"]))}),
            Scores(scores, {lv: (0.6 if lv == sev else 0.1) for lv in LEVELS}),
            Decision(cat, sev, float(rng.uniform(0, 1)), route, ("synthetic",), 0.8),  # type: ignore[arg-type]
        )
        rec.record([item], "triage", "7", "key-test", at)
        if route == "review" or rng.random() < 0.3:
            experts = 2 if rng.random() < 0.3 else 1
            for e in range(experts):
                right = rng.random() < 0.85
                other = str(rng.choice([c for c in cats[:-1] if c != cat]))
                said = (() if cat == "none" else (cat,)) if right else (other,)
                aid += 1
                wait = timedelta(hours=float(rng.exponential(2.0 if sev in ("high", "critical") else 10.0)))
                labels.append(ExpertLabel(aid, f"T-{i}", f"expert-{e}", said, sev if right else "low", at + wait,
                                          "webhook"))
    rec.flush()
    store.record_labels(labels)
    return START + timedelta(days=7 * weeks)
