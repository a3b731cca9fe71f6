"""Evaluation metrics that respect unknown labels: category P/R/F1, macro-F1, severity, calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix


def _binary_prf(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum((pred == 1) & (y == 1)))
    fp = float(np.sum((pred == 1) & (y == 0)))
    fn = float(np.sum((pred == 0) & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def category_report(
    y_true: np.ndarray,
    proba: np.ndarray,
    categories: Sequence[str],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-category precision, recall, F1 and support over rows where the label is known.

    `y_true` is (n, C) with NaN for unknown; `proba` is (n, C). Categories with no known positive are
    left out: their F1 says nothing.
    """
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(categories):
        known = ~np.isnan(y_true[:, j])
        y = y_true[known, j].astype(int)
        if y.sum() == 0:
            continue
        threshold = (thresholds or {}).get(name, 0.5)
        pred = (proba[known, j] >= threshold).astype(int)
        p, r, f = _binary_prf(y, pred)
        out[name] = {"precision": p, "recall": r, "f1": f, "support": float(y.sum()), "known": float(len(y))}
    return out


def macro_f1(report: Mapping[str, Mapping[str, float]]) -> float:
    """Unweighted mean F1 over the categories in a category report."""
    if not report:
        return 0.0
    return float(np.mean([m["f1"] for m in report.values()]))


def severity_report(y_true: np.ndarray, proba: np.ndarray, levels: Sequence[str]) -> dict[str, float]:
    """Severity accuracy, mean absolute error in levels, quadratic weighted kappa, high/critical recall.

    `y_true` holds level indices with -1 for unknown; `proba` is (n, L).
    """
    known = y_true >= 0
    if not known.any():
        return {}
    y = y_true[known]
    pred = proba[known].argmax(axis=1)
    out = {
        "severity_accuracy": float(np.mean(pred == y)),
        "severity_mae": float(np.mean(np.abs(pred - y))),
        "severity_qwk": float(cohen_kappa_score(y, pred, weights="quadratic", labels=list(range(len(levels)))))
        if len(np.unique(y)) > 1
        else 0.0,
        "severity_known": float(len(y)),
    }
    for name in ("high", "critical"):
        if name in levels:
            k = list(levels).index(name)
            # "recall at or above": a critical ticket predicted as high still gets a person fast.
            mask = y == k
            if mask.any():
                out[f"severity_recall_{name}"] = float(np.mean(pred[mask] >= k))
    return out


def severity_confusion(y_true: np.ndarray, proba: np.ndarray, n_levels: int) -> np.ndarray:
    """Confusion matrix of severity levels (rows true, columns predicted) over known rows."""
    known = y_true >= 0
    return confusion_matrix(y_true[known], proba[known].argmax(axis=1), labels=list(range(n_levels)))


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """ECE of the category probabilities over every known (row, category) cell, equal-width bins."""
    known = ~np.isnan(y_true)
    y = y_true[known]
    p = proba[known]
    if len(y) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(float(p[m].mean()) - float(y[m].mean()))
    return float(ece)


def summary(
    y_cat: np.ndarray,
    p_cat: np.ndarray,
    categories: Sequence[str],
    y_sev: np.ndarray,
    p_sev: np.ndarray,
    levels: Sequence[str],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Flat metric dict (MLflow-ready): per-category p/r/f1, macro-F1, severity metrics, ECE."""
    report = category_report(y_cat, p_cat, categories, thresholds)
    flat: dict[str, float] = {"macro_f1": macro_f1(report), "ece": expected_calibration_error(y_cat, p_cat)}
    for name, m in report.items():
        for key in ("precision", "recall", "f1", "support"):
            flat[f"{name}_{key}"] = m[key]
    flat.update(severity_report(y_sev, p_sev, levels))
    return flat
