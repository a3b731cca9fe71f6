"""Label audit: labels the model confidently contradicts, and items annotators disagree on, as a second review queue.

Suspected label errors follow confident learning (Northcutt et al., 2021) per category: a class's confidence
threshold is the mean out-of-sample probability the model gives that class on the rows labelled with it; a row
"confidently belongs" to every class whose probability reaches that class's threshold (the larger one if both do).
A row whose confident class differs from its expert label is a suspected error, ranked by how little probability
the model leaves for the given label. The probabilities must be out-of-sample (cross-validated, or from a model that
never trained on these rows), or the model simply repeats the labels it learned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from triage.data.schema import Example
from triage.data.sources import spec
from triage.errors import DataError

AuditKind = Literal["suspected_label_error", "annotator_disagreement"]


@dataclass(frozen=True)
class AuditItem:
    """One item for the audit queue: why it is there and how strongly (higher score = look first)."""

    item_id: str
    kind: AuditKind
    categories: tuple[str, ...]
    reason: str
    score: float


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def confident_thresholds(labels: np.ndarray, proba: np.ndarray, min_per_class: int = 5) -> np.ndarray:
    """(C, 2) per-category thresholds [no, yes]: mean P(no) over rows labelled no, mean P(yes) over rows labelled yes.

    NaN where a category has fewer than `min_per_class` known rows of a class (no threshold, no flags).
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"labels {y.shape} and proba {p.shape} must be the same (n, C) shape")
    out = np.full((y.shape[1], 2), np.nan)
    for j in range(y.shape[1]):
        pos = y[:, j] == 1
        neg = y[:, j] == 0
        if pos.sum() >= min_per_class and neg.sum() >= min_per_class:
            out[j, 0] = float(np.mean(1.0 - p[neg, j]))
            out[j, 1] = float(np.mean(p[pos, j]))
    return out


def suspected_label_errors(
    labels: np.ndarray,
    proba: np.ndarray,
    categories: Sequence[str],
    item_ids: Sequence[str] | None = None,
    min_per_class: int = 5,
) -> list[AuditItem]:
    """Rows whose expert label the model confidently contradicts, one item per row, most suspicious first.

    `labels` (n, C): 1, 0 or NaN (unknown, never audited); `proba` (n, C): out-of-sample probabilities.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape[1:] != (len(categories),):
        raise ValueError(f"labels have {y.shape[1:]} columns but {len(categories)} categories were named")
    ids = list(item_ids) if item_ids is not None else [str(i) for i in range(len(y))]
    if len(ids) != len(y):
        raise ValueError(f"{len(ids)} item ids for {len(y)} rows")
    th = confident_thresholds(y, p, min_per_class)
    found: dict[int, list[tuple[str, str, float]]] = {}
    for j, name in enumerate(categories):
        t_no, t_yes = th[j]
        if np.isnan(t_no):
            continue
        pj = p[:, j]
        yes_ok = pj >= t_yes
        no_ok = (1.0 - pj) >= t_no
        # Confident class: the one whose threshold is reached; if both are, the more probable one.
        confident_yes = yes_ok & (~no_ok | (pj > 0.5))
        confident_no = no_ok & (~yes_ok | (pj <= 0.5))
        for i in np.flatnonzero((y[:, j] == 1) & confident_no):
            found.setdefault(int(i), []).append(
                (name, f"labelled {name}, but the model gives it {_pct(pj[i])} (confidently not {name}: "
                       f"{_pct(1 - pj[i])} >= {_pct(t_no)}, the mean on rows labelled not {name})", 1.0 - pj[i]))
        for i in np.flatnonzero((y[:, j] == 0) & confident_yes):
            found.setdefault(int(i), []).append(
                (name, f"labelled not {name}, but the model gives {name} {_pct(pj[i])} (>= {_pct(t_yes)}, "
                       f"the mean on rows labelled {name})", float(pj[i])))
    items = [
        AuditItem(ids[i], "suspected_label_error", tuple(h[0] for h in hits), "; ".join(h[1] for h in hits),
                  round(max(h[2] for h in hits), 6))
        for i, hits in found.items()
    ]
    return sorted(items, key=lambda a: (-a.score, a.item_id))


def annotator_disagreements(
    votes: Mapping[str, Sequence[tuple[frozenset[str], str | None]]],
    categories: Sequence[str],
    min_agreement: float = 1.0,
) -> list[AuditItem]:
    """Items whose reviewers split on a category or on severity, least agreement first.

    `votes[item]` holds each reviewer's (categories they chose, severity or None). An item is flagged when the
    majority share on some question is below `min_agreement` (1.0 = any split); items with one vote are skipped.
    """
    if not 0.0 < min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
    out = []
    for item, vs in votes.items():
        m = len(vs)
        if m < 2:
            continue
        split: list[tuple[str, str, float]] = []
        for name in categories:
            yes = sum(name in chosen for chosen, _ in vs)
            share = max(yes, m - yes) / m
            if share < min_agreement:
                split.append((name, f"reviewers split on {name}: {yes} of {m} said yes", share))
        levels = Counter(sev for _, sev in vs if sev is not None)
        graded = sum(levels.values())
        if graded >= 2:
            share = max(levels.values()) / graded
            if share < min_agreement:
                shown = ", ".join(f"{k} {v}" for k, v in levels.most_common())
                split.append(("severity", f"reviewers split on severity: {shown}", share))
        if split:
            out.append(AuditItem(str(item), "annotator_disagreement",
                                 tuple(s[0] for s in split if s[0] != "severity"),
                                 "; ".join(s[1] for s in split), round(1.0 - min(s[2] for s in split), 6)))
    return sorted(out, key=lambda a: (-a.score, a.item_id))


def dataset_disagreements(
    examples: Sequence[Example], item_ids: Sequence[str] | None = None, min_agreement: float = 0.75
) -> list[AuditItem]:
    """Examples from sources whose weight is annotator agreement (vote shares) where it is below `min_agreement`."""
    ids = list(item_ids) if item_ids is not None else [str(i) for i in range(len(examples))]
    out = []
    for item, ex in zip(ids, examples, strict=True):
        try:
            votes = spec(ex.source).weight != "1.0"
        except DataError:  # a source outside the shared data (e.g. expert imports) records no votes
            votes = False
        if votes and ex.weight < min_agreement:
            labelled = ", ".join(f"{k}={v}" for k, v in sorted(ex.labels.items())) or "no category"
            out.append(AuditItem(item, "annotator_disagreement", tuple(sorted(ex.labels)),
                                 f"{ex.source} annotators agreed only {_pct(ex.weight)} on this label ({labelled})",
                                 round(1.0 - ex.weight, 6)))
    return sorted(out, key=lambda a: (-a.score, a.item_id))


def audit_queue(*queues: Sequence[AuditItem], limit: int | None = None) -> list[AuditItem]:
    """One audit queue from several: most suspicious first, an item listed once (its strongest entry kept)."""
    best: dict[str, AuditItem] = {}
    for q in queues:
        for a in q:
            if a.item_id not in best or a.score > best[a.item_id].score:
                best[a.item_id] = a
    ordered = sorted(best.values(), key=lambda a: (-a.score, a.item_id))
    return ordered[:limit] if limit is not None else ordered
