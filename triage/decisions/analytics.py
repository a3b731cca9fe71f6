"""The report's tables, computed from the decision log for a period (plain pandas; one function per question).

Every table is a DataFrame that is written as CSV as it is, so a spreadsheet shows what the report shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from triage.decisions.store import DecisionStore
from triage.review.agreement import agreement
from triage.taxonomy import Policy

NONE = "none"


@dataclass(frozen=True)
class Period:
    """A half-open period [since, until) of naive UTC times."""

    since: datetime
    until: datetime


def load_frames(store: DecisionStore, period: Period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The period's decisions, and the live expert labels joined to them (one row per annotation)."""
    store.join_pending_labels()
    decisions = pd.DataFrame(store.decisions_between(period.since, period.until))
    if decisions.empty:
        decisions = pd.DataFrame(columns=["id", "ticket_id", "decided_at", "category", "severity", "route",
                                          "source", "audit_sample", "category_scores", "text_length", "script"])
    ids = decisions["id"].tolist()
    labels = pd.DataFrame(store.labels_for(ids) if ids else [])
    if labels.empty:
        labels = pd.DataFrame(columns=["annotation_id", "decision_id", "annotator", "categories", "severity",
                                       "labelled_at", "category_correct", "severity_correct", "wait_seconds"])
    return decisions, labels


def volume(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions per day x category x severity."""
    if decisions.empty:
        return pd.DataFrame(columns=["day", "category", "severity", "decisions"])
    d = decisions.assign(day=pd.to_datetime(decisions["decided_at"]).dt.strftime("%Y-%m-%d"))
    out = d.groupby(["day", "category", "severity"]).size().rename("decisions").reset_index()
    return out.sort_values(["day", "category", "severity"]).reset_index(drop=True)


def route_share(decisions: pd.DataFrame) -> pd.DataFrame:
    """Auto vs review decisions per category, and the share routed automatically."""
    cols = ["category", "auto", "review", "auto_share"]
    if decisions.empty:
        return pd.DataFrame(columns=cols)
    t = pd.crosstab(decisions["category"], decisions["route"])
    for r in ("auto", "review"):
        if r not in t:
            t[r] = 0
    t = t[["auto", "review"]].reset_index()
    t["auto_share"] = (t["auto"] / (t["auto"] + t["review"])).round(4)
    return t[cols].sort_values("category").reset_index(drop=True)


def first_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """The earliest label each decision received."""
    if labels.empty:
        return labels
    return labels.sort_values(["decision_id", "labelled_at"]).groupby("decision_id", as_index=False).first()


def review_time(decisions: pd.DataFrame, labels: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """Hours from decision to first expert label, median and p90, by the decision's severity."""
    cols = ["severity", "reviewed", "median_hours", "p90_hours"]
    first = first_labels(labels)
    if first.empty:
        return pd.DataFrame(columns=cols)
    j = first.merge(decisions[["id", "severity"]].rename(columns={"id": "decision_id", "severity": "dsev"}),
                    on="decision_id")
    rows = []
    for level in levels:
        waits = j.loc[j["dsev"] == level, "wait_seconds"].astype(float) / 3600.0
        if len(waits):
            rows.append({"severity": level, "reviewed": len(waits), "median_hours": round(float(waits.median()), 3),
                         "p90_hours": round(float(np.percentile(waits, 90)), 3)})
    return pd.DataFrame(rows, columns=cols)


def expert_agreement(labels: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Krippendorff's alpha (nominal) between experts, per category, over tickets two or more experts labelled."""
    cols = ["category", "tickets", "alpha", "pairwise_agreement"]
    if labels.empty:
        return pd.DataFrame(columns=cols)
    by_task: dict[int, list[tuple[frozenset[str], str | None]]] = {}
    for lab in labels.sort_values("labelled_at").drop_duplicates(["decision_id", "annotator"], keep="last") \
                     .itertuples():
        by_task.setdefault(int(lab.decision_id), []).append((frozenset(lab.categories), lab.severity))
    agr = agreement(by_task, policy.category_names)

    def r(x: float | None) -> float | None:
        return None if x is None else round(float(x), 4)

    rows = [{"category": c, "tickets": agr.tasks, "alpha": r(agr.category_alpha[c]),
             "pairwise_agreement": r(agr.category_pairwise[c])} for c in policy.category_names]
    rows.append({"category": "severity", "tickets": agr.tasks, "alpha": r(agr.severity_alpha),
                 "pairwise_agreement": r(agr.severity_pairwise)})
    return pd.DataFrame(rows, columns=cols)


def expert_verdicts(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled decision: the experts' majority categories (ties: the latest label wins), and whether
    the model's category was right by the same vote."""
    cols = ["decision_id", "expert_categories", "category_correct"]
    if labels.empty:
        return pd.DataFrame(columns=cols)
    groups: dict[int, list[tuple[Any, list[str], bool]]] = {}
    for did, at, cats, ok in zip(labels["decision_id"], labels["labelled_at"], labels["categories"],
                                 labels["category_correct"], strict=True):
        groups.setdefault(int(did), []).append((at, list(cats), bool(ok)))
    rows = []
    for did, group in groups.items():
        group.sort(key=lambda g: g[0])
        n = len(group)
        counts = Counter(c for _, cats, _ in group for c in set(cats))
        latest = set(group[-1][1])
        majority = sorted(c for c, k in counts.items() if 2 * k > n or (2 * k == n and c in latest))
        right = sum(ok for _, _, ok in group)
        correct = 2 * right > n or (2 * right == n and group[-1][2])
        rows.append({"decision_id": did, "expert_categories": majority, "category_correct": correct})
    return pd.DataFrame(rows, columns=cols)


def confusion(decisions: pd.DataFrame, verdicts: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Model vs expert per category over labelled decisions: model positive = the decision's category."""
    cols = ["category", "tp", "fp", "fn", "tn", "precision", "recall"]
    if verdicts.empty:
        return pd.DataFrame(columns=cols)
    j = verdicts.merge(decisions[["id", "category"]].rename(columns={"id": "decision_id"}), on="decision_id")
    rows = []
    for c in policy.category_names:
        model = j["category"] == c
        expert = j["expert_categories"].map(lambda cats, c=c: c in cats)
        tp, fp = int((model & expert).sum()), int((model & ~expert).sum())
        fn, tn = int((~model & expert).sum()), int((~model & ~expert).sum())
        rows.append({"category": c, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                     "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                     "recall": round(tp / (tp + fn), 4) if tp + fn else None})
    return pd.DataFrame(rows, columns=cols)


def auto_precision(decisions: pd.DataFrame, verdicts: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Precision of auto-routed decisions per category, checked against later expert labels (every auto decision
    an expert happened to label) and against the random audit sample (unbiased), beside the policy's target."""
    cols = ["category", "measured_against", "labelled", "correct", "precision", "target_precision"]
    if verdicts.empty:
        return pd.DataFrame(columns=cols)
    auto = decisions.loc[decisions["route"] == "auto", ["id", "category", "audit_sample"]]
    j = verdicts.merge(auto.rename(columns={"id": "decision_id"}), on="decision_id")
    targets = {c.name: c.target_precision for c in policy.categories}
    rows = []
    for against, subset in (("expert labels", j), ("audit sample", j[j["audit_sample"].astype(bool)])):
        for cat, g in subset.groupby("category"):
            n, ok = len(g), int(g["category_correct"].sum())
            rows.append({"category": cat, "measured_against": against, "labelled": n, "correct": ok,
                         "precision": round(ok / n, 4), "target_precision": targets.get(str(cat))})
    return pd.DataFrame(rows, columns=cols)


def rising(decisions: pd.DataFrame, until: datetime, top: int = 10) -> pd.DataFrame:
    """Categories and sources with the largest growth, last 7 days of the period vs the 7 days before."""
    cols = ["kind", "name", "last_week", "previous_week", "change", "growth"]
    if decisions.empty:
        return pd.DataFrame(columns=cols)
    at = pd.to_datetime(decisions["decided_at"])
    last = decisions[(at >= until - timedelta(days=7)) & (at < until)]
    prev = decisions[(at >= until - timedelta(days=14)) & (at < until - timedelta(days=7))]
    rows = []
    for kind, col in (("category", "category"), ("source", "source")):
        a = last[col].fillna("(none)").value_counts()
        b = prev[col].fillna("(none)").value_counts()
        for name in sorted(set(a.index) | set(b.index)):
            x, y = int(a.get(name, 0)), int(b.get(name, 0))
            rows.append({"kind": kind, "name": name, "last_week": x, "previous_week": y, "change": x - y,
                         "growth": round((x - y) / y, 4) if y else None})
    out = pd.DataFrame(rows, columns=cols)
    return (out.sort_values(["kind", "change"], ascending=[True, False]).groupby("kind").head(top)
            .reset_index(drop=True))


def report_tables(store: DecisionStore, period: Period, policy: Policy) -> dict[str, pd.DataFrame]:
    """Every table of the report, by name (the CSV file names)."""
    decisions, labels = load_frames(store, period)
    verdicts = expert_verdicts(labels)
    return {
        "volume": volume(decisions),
        "route_share": route_share(decisions),
        "review_time": review_time(decisions, labels, policy.severity_names),
        "expert_agreement": expert_agreement(labels, policy),
        "confusion": confusion(decisions, verdicts, policy),
        "auto_precision": auto_precision(decisions, verdicts, policy),
        "rising": rising(decisions, period.until),
    }
