"""Evaluate a classifier on labelled examples: overall, per source, and as figures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from triage import metrics
from triage.data.schema import Example, label_matrix, severity_vector
from triage.models.base import Classifier, Prediction
from triage.taxonomy import Policy


def predict_examples(classifier: Classifier, examples: Sequence[Example], batch_size: int = 512) -> Prediction:
    """Predictions for examples, in batches so memory stays flat."""
    texts = [ex.text for ex in examples]
    parts = [classifier.predict(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    if not parts:
        card = classifier.card
        return Prediction(np.zeros((0, len(card.categories))), np.zeros((0, len(card.severity_levels))))
    return Prediction(
        categories=np.vstack([p.categories for p in parts]),
        severity=np.vstack([p.severity for p in parts]),
    )


def evaluate(
    classifier: Classifier,
    examples: Sequence[Example],
    policy: Policy,
    prediction: Prediction | None = None,
) -> dict[str, float]:
    """Flat metrics over all examples, then `<source>/<metric>` for each source."""
    card = classifier.card
    pred = prediction or predict_examples(classifier, examples)
    thresholds = {c: card.thresholds.get(c, policy.category(c).threshold) for c in card.categories}

    def summarise(idx: np.ndarray) -> dict[str, float]:
        subset = [examples[i] for i in idx]
        return metrics.summary(
            label_matrix(subset, card.categories), pred.categories[idx], card.categories,
            severity_vector(subset, card.severity_levels), pred.severity[idx], card.severity_levels,
            thresholds,
        )

    out = summarise(np.arange(len(examples)))
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_source[ex.source].append(i)
    for source, idx in sorted(by_source.items()):
        for key, value in summarise(np.array(idx)).items():
            out[f"{source}/{key}"] = value
    return out


def confusion_figure(classifier: Classifier, examples: Sequence[Example], prediction: Prediction) -> Any:
    """Figure: the severity confusion matrix and one 2x2 matrix per category (known rows only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    card = classifier.card
    y_cat = label_matrix(examples, card.categories)
    y_sev = severity_vector(examples, card.severity_levels)
    n = len(card.categories) + 1
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows))
    flat = np.atleast_1d(axes).ravel()
    sev_cm = metrics.severity_confusion(y_sev, prediction.severity, len(card.severity_levels))
    _matrix(flat[0], sev_cm, list(card.severity_levels), "severity")
    for k, name in enumerate(card.categories, start=1):
        known = ~np.isnan(y_cat[:, k - 1])
        y = y_cat[known, k - 1].astype(int)
        p = (prediction.categories[known, k - 1] >= card.thresholds.get(name, 0.5)).astype(int)
        cm = np.array([[np.sum((y == a) & (p == b)) for b in (0, 1)] for a in (0, 1)])
        _matrix(flat[k], cm, ["no", "yes"], name)
    for ax in flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def reliability_figure(classifier: Classifier, examples: Sequence[Example], prediction: Prediction,
                       bins: int = 10) -> Any:
    """Reliability diagram of the category probabilities (all known cells, and per category with support)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    card = classifier.card
    y = label_matrix(examples, card.categories)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    edges = np.linspace(0, 1, bins + 1)

    def curve(yy: np.ndarray, pp: np.ndarray) -> tuple[list[float], list[float]]:
        idx = np.clip(np.digitize(pp, edges[1:-1]), 0, bins - 1)
        xs, ys = [], []
        for b in range(bins):
            m = idx == b
            if m.sum() >= 5:
                xs.append(float(pp[m].mean()))
                ys.append(float(yy[m].mean()))
        return xs, ys

    known = ~np.isnan(y)
    xs, ys = curve(y[known], prediction.categories[known])
    ece = metrics.expected_calibration_error(y, prediction.categories)
    ax.plot(xs, ys, "o-", lw=2, label=f"all categories (ECE {ece:.3f})")
    for j, name in enumerate(card.categories):
        k = known[:, j]
        if np.nansum(y[k, j]) >= 20:
            xs, ys = curve(y[k, j], prediction.categories[k, j])
            ax.plot(xs, ys, ".-", lw=1, alpha=0.7, label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"reliability ({card.kind})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _matrix(ax: Any, cm: np.ndarray, labels: list[str], title: str) -> None:
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=8)
