"""Measurements the quality table and the routing report share, as numpy functions on hand-checkable arrays.

Labels follow the data's convention: `y` is (n, C) with 1, 0 or NaN (unknown: the source says nothing, which is
not negative); unknown cells are left out of every figure. AUPRC is average precision (sklearn), defined only where
a slice has at least one known positive and one known negative: a slice with no negatives scores 1.0 whatever the
model does, so it would flatter the macro figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from triage import metrics
from triage.conformal import DEFAULT_DELTA, clopper_pearson_lower, clopper_pearson_upper


def auprc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Average precision of scores `p` (n,) against labels `y` (n,) over known rows; None without both classes."""
    y = np.asarray(y, dtype=np.float64)
    known = ~np.isnan(y)
    yk = y[known]
    if yk.sum() == 0 or yk.sum() == len(yk):
        return None
    return float(average_precision_score(yk.astype(int), np.asarray(p, dtype=np.float64)[known]))


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Unweighted mean of the defined values (None when none is)."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def category_metrics(y: np.ndarray, p: np.ndarray, categories: Sequence[str],
                     thresholds: Mapping[str, float]) -> dict[str, dict[str, float | None]]:
    """Per category: AUPRC, F1 / precision / recall at the decision threshold, known positives and known rows.

    `y` (n, C) with NaN unknown, `p` (n, C). F1 is None where no known positive exists (it would say nothing).
    """
    report = metrics.category_report(y, p, categories, thresholds)
    out: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(categories):
        known = ~np.isnan(y[:, j])
        r = report.get(name)
        out[name] = {
            "auprc": auprc(y[:, j], p[:, j]),
            "f1": None if r is None else r["f1"],
            "precision": None if r is None else r["precision"],
            "recall": None if r is None else r["recall"],
            "positives": float(np.nansum(y[:, j])),
            "known": float(known.sum()),
        }
    return out


def macro(per_category: Mapping[str, Mapping[str, float | None]], key: str,
          only: Sequence[str] | None = None) -> float | None:
    """Mean of `key` over the categories (or the `only` ones) where it is defined."""
    names = [c for c in per_category if only is None or c in only]
    return mean_defined([per_category[c][key] for c in names])


def group_indices(keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Row indices per distinct key (e.g. the source or language of each row), keys sorted."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    return {k: np.asarray(groups[k], dtype=np.int64) for k in sorted(groups)}


def slice_metrics(y: np.ndarray, p: np.ndarray, categories: Sequence[str], thresholds: Mapping[str, float],
                  keys: Sequence[str], only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per slice (rows sharing a key): row count, macro-AUPRC and macro-F1 over its defined categories, ECE, and
    the per-category figures. `only` restricts the macro means to those categories."""
    out: dict[str, dict[str, Any]] = {}
    for key, idx in group_indices(keys).items():
        per = category_metrics(y[idx], p[idx], categories, thresholds)
        out[key] = {"rows": len(idx), "macro_auprc": macro(per, "auprc", only), "macro_f1": macro(per, "f1", only),
                    "ece": metrics.expected_calibration_error(y[idx], p[idx]), "categories": per}
    return out


def quality_metrics(
    y: np.ndarray,
    p: np.ndarray,
    categories: Sequence[str],
    thresholds: Mapping[str, float],
    y_sev: np.ndarray,
    p_sev: np.ndarray,
    levels: Sequence[str],
    sources: Sequence[str],
    languages: Sequence[str],
    focus_source: str,
    focus_categories: Sequence[str],
) -> dict[str, Any]:
    """Everything the quality table reports for one model on one test split (JSON-ready).

    `y` (n, C) NaN unknown, `p` (n, C); `y_sev` (n,) level index, -1 unknown; `p_sev` (n, L); `sources` and
    `languages` one key per row. The focus figure is the macro-AUPRC over `focus_categories` on the rows of
    `focus_source` (the openai_moderation test rows in the issue's acceptance).
    """
    per = category_metrics(y, p, categories, thresholds)
    rows = np.flatnonzero(np.asarray(sources) == focus_source)
    focus_cats = [c for c in focus_categories if c in categories]
    focus = category_metrics(y[rows][:, [categories.index(c) for c in focus_cats]],
                             p[rows][:, [categories.index(c) for c in focus_cats]], focus_cats, thresholds)
    return {
        "rows": len(y),
        "categories": per,
        "macro_auprc": macro(per, "auprc"),
        "macro_f1": macro(per, "f1"),
        "focus": {"source": focus_source, "rows": len(rows), "macro_auprc": macro(focus, "auprc"),
                  "macro_f1": macro(focus, "f1"), "categories": focus},
        "severity": metrics.severity_report(y_sev, p_sev, levels),
        "ece": metrics.expected_calibration_error(y, p),
        "by_source": slice_metrics(y, p, categories, thresholds, sources),
        "by_language": slice_metrics(y, p, categories, thresholds, languages),
    }


# --- Routing: what the two promises cost and deliver -------------------------------------------------------------

def auto_clear_miss(y: np.ndarray, auto: np.ndarray, flagged: np.ndarray,
                    delta: float = DEFAULT_DELTA) -> dict[str, float | int | None]:
    """Share of one category's violating texts that are auto-cleared: positive (y == 1, NaN unknown ignored),
    routed auto, and not flagged for the category. With the one-sided Clopper-Pearson upper bound at 1 - delta.

    `y` (n,), `auto` (n,) bool route == auto, `flagged` (n,) bool: the category is in the decision's prediction
    set (or reaches its decision threshold) so an auto route acts on it rather than clearing it.
    """
    pos = np.asarray(y, dtype=np.float64) == 1.0
    cleared = pos & np.asarray(auto, dtype=bool) & ~np.asarray(flagged, dtype=bool)
    n, k = int(pos.sum()), int(cleared.sum())
    return {"positives": n, "auto_cleared": k, "share": k / n if n else None,
            "upper_bound": float(clopper_pearson_upper(k, n, delta)) if n else None}


def severe_recall(ranks: np.ndarray, auto: np.ndarray, predicted_ranks: np.ndarray, first_severe: int,
                  delta: float = DEFAULT_DELTA) -> dict[str, float | int | None]:
    """Recall of texts whose known severity rank is >= `first_severe`: caught when reviewed or predicted at that
    severity or above (escalated); missed when auto-routed below it. `ranks` -1 = unknown (left out)."""
    r = np.asarray(ranks)
    severe = r >= first_severe
    caught = ~np.asarray(auto, dtype=bool) | (np.asarray(predicted_ranks) >= first_severe)
    n, k = int(severe.sum()), int((severe & caught).sum())
    return {"severe": n, "caught": k, "recall": k / n if n else None,
            "lower_bound": float(clopper_pearson_lower(k, n, delta)) if n else None}


def clean_rows(y: np.ndarray) -> np.ndarray:
    """Rows with at least one known label and no known positive: (n,) bool from `y` (n, C) with NaN unknown."""
    yy = np.asarray(y, dtype=np.float64)
    return (~np.isnan(yy)).any(axis=1) & ~(np.nan_to_num(yy, nan=0.0) == 1.0).any(axis=1)


SEVERITY_CAUSE = "severity"


def review_cause(reason: str, categories: Sequence[str]) -> str:
    """What a routing reason (triage.routing.decide, triage.conformal, the scorer) holds a ticket for: the category
    it names first (for two categories too close to tell apart, the likelier), `severity` for the severity rules,
    else `other`."""
    head = reason.removeprefix("unsure about ").split(" ", 1)[0].rstrip(":")
    if head in categories:
        return head
    if head == SEVERITY_CAUSE or reason.startswith(("severity ", "may be ")):
        return SEVERITY_CAUSE
    return "other"


def review_causes(reasons: Sequence[Sequence[str]], review: np.ndarray, y: np.ndarray,
                  categories: Sequence[str]) -> list[dict[str, Any]]:
    """Why clean texts (no known positive) go to review: per cause, the share of clean texts it holds back, and
    the share it alone holds back (what review would shrink by if that one rule cleared them), largest first."""
    rev = np.asarray(review, dtype=bool)
    clean = np.flatnonzero(clean_rows(y))
    n = len(clean)
    held: defaultdict[str, int] = defaultdict(int)
    alone: defaultdict[str, int] = defaultdict(int)
    for i in clean:
        if not rev[i]:
            continue
        causes = {review_cause(r, categories) for r in reasons[i]}
        for c in causes:
            held[c] += 1
        if len(causes) == 1:
            alone[next(iter(causes))] += 1
    rows = [{"cause": c, "clean_rows": n, "held": k, "held_share": k / n if n else None, "alone": alone[c],
             "alone_share": alone[c] / n if n else None} for c, k in held.items()]
    return sorted(rows, key=lambda r: (-r["held"], r["cause"]))


def review_shares(review: np.ndarray, y: np.ndarray, keys: Sequence[str]) -> dict[str, Any]:
    """The review workload: share of all texts sent to review and of clean texts (no known positive) sent to
    review, overall and per key (e.g. source). `review` (n,) bool, `y` (n, C) NaN unknown."""
    rev = np.asarray(review, dtype=bool)
    clean = clean_rows(y)

    def shares(idx: np.ndarray) -> dict[str, float | int | None]:
        c = clean[idx]
        return {"rows": len(idx), "review_share": float(rev[idx].mean()) if len(idx) else None,
                "clean_rows": int(c.sum()), "clean_review_share": float(rev[idx][c].mean()) if c.any() else None}

    return {"overall": shares(np.arange(len(rev))),
            "by_key": {k: shares(idx) for k, idx in group_indices(keys).items()}}
