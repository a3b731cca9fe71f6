"""Probability calibration and decision thresholds, in plain numpy/scipy so serving needs no torch.

Three score shapes are calibrated by a temperature fitted on validation data (minimum negative log-likelihood):
- sigmoid logits (multi-label categories): p = sigmoid(z / T + b); the shift b undoes the bias that
  positive weighting puts into the logits, the temperature fixes over/under-confidence;
- softmax logits (single-label): p = softmax(z / T);
- cumulative (ordinal) logits, z_k = logit P(y > k) for k = 0..K-2: p = differences of sigmoid(z / T).
A positive temperature is a monotone map, so it never changes the ranking of the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, log_softmax, softmax

_EPS = 1e-12
_LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_BIAS_BOUNDS = (-10.0, 10.0)


@dataclass(frozen=True)
class SigmoidCalibration:
    """Temperature and shift of one sigmoid output: p = sigmoid(logit / temperature + bias)."""

    temperature: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0 or not np.isfinite(self.temperature):
            raise ValueError(f"temperature must be a positive finite number, got {self.temperature}")
        if not np.isfinite(self.bias):
            raise ValueError(f"bias must be finite, got {self.bias}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw logits (any shape)."""
        return np.asarray(expit(np.asarray(logits, dtype=np.float64) / self.temperature + self.bias))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready parameters."""
        return asdict(self)


def _sigmoid_nll(params: np.ndarray, z: np.ndarray, y: np.ndarray, w: np.ndarray, fit_bias: bool) -> float:
    t = np.exp(params[0])
    b = params[1] if fit_bias else 0.0
    s = z / t + b
    # log(1 + exp(-s)) for y=1, log(1 + exp(s)) for y=0, computed stably.
    loss = np.logaddexp(0.0, -s) * y + np.logaddexp(0.0, s) * (1.0 - y)
    return float(np.sum(w * loss) / np.sum(w))


def fit_sigmoid_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    fit_bias: bool = True,
) -> SigmoidCalibration:
    """Fit temperature (and shift) of sigmoid logits by minimum NLL; NaN labels (unknown) are ignored."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if z.shape != y.shape:
        raise ValueError(f"logits and labels differ in size: {z.shape} vs {y.shape}")
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    known = ~np.isnan(y) & np.isfinite(z)
    z, y, w = z[known], y[known], w[known]
    if len(z) == 0 or np.all(y == y[0]):
        return SigmoidCalibration()
    from scipy.optimize import minimize  # only fitting needs it; serving imports this module too

    bounds = [_LOG_T_BOUNDS, _BIAS_BOUNDS if fit_bias else (0.0, 0.0)]
    res = minimize(
        _sigmoid_nll, x0=np.zeros(2), args=(z, y, w, fit_bias), method="L-BFGS-B", bounds=bounds
    )
    return SigmoidCalibration(temperature=float(np.exp(res.x[0])), bias=float(res.x[1]) if fit_bias else 0.0)


def apply_sigmoid_calibration(logits: np.ndarray, calibrations: list[SigmoidCalibration]) -> np.ndarray:
    """Calibrated (n, C) probabilities, one calibration per column."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(calibrations):
        raise ValueError(f"expected logits of shape (n, {len(calibrations)}), got {z.shape}")
    temperature = np.array([c.temperature for c in calibrations], dtype=np.float64)
    bias = np.array([c.bias for c in calibrations], dtype=np.float64)
    return np.asarray(expit(z / temperature + bias))


def softmax_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of logits divided by a positive temperature."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return np.asarray(softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1))


def _fit_temperature(logits: np.ndarray, labels: np.ndarray,
                     level_log_probs: Callable[[np.ndarray, float], np.ndarray]) -> float:
    """Temperature minimising the NLL of single-label outputs; labels < 0 (unknown) are ignored."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    known = y >= 0
    z, y = z[known], y[known]
    if len(y) == 0:
        return 1.0

    from scipy.optimize import minimize

    def nll(params: np.ndarray) -> float:
        lp = level_log_probs(z, float(np.exp(params[0])))
        return float(-np.mean(lp[np.arange(len(y)), y]))

    res = minimize(nll, x0=np.zeros(1), method="L-BFGS-B", bounds=[_LOG_T_BOUNDS])
    return float(np.exp(res.x[0]))


def fit_softmax_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the NLL of single-label softmax logits; labels < 0 (unknown) are ignored."""
    return _fit_temperature(logits, labels, lambda z, t: np.asarray(log_softmax(z / t, axis=1)))


def ordinal_probabilities(cumulative_logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Level probabilities (n, K) from cumulative logits (n, K-1) of P(y > k).

    The model keeps its cut-points ordered, so P(y > k) falls with k; a clip guards against round-off.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    s = expit(np.asarray(cumulative_logits, dtype=np.float64) / temperature)
    s = np.minimum.accumulate(s, axis=-1)
    ones = np.ones((*s.shape[:-1], 1))
    zeros = np.zeros((*s.shape[:-1], 1))
    upper = np.concatenate([ones, s], axis=-1)
    lower = np.concatenate([s, zeros], axis=-1)
    p = np.clip(upper - lower, 0.0, 1.0)
    return np.asarray(p / np.maximum(p.sum(axis=-1, keepdims=True), _EPS))


def fit_ordinal_temperature(cumulative_logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the NLL of ordinal level probabilities; labels < 0 (unknown) are ignored."""
    return _fit_temperature(cumulative_logits, labels,
                            lambda z, t: np.log(np.maximum(ordinal_probabilities(z, t), _EPS)))


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and how it was chosen, with the validation precision/recall it gives."""

    threshold: float
    method: Literal["target_precision", "best_f1", "default"]
    precision: float
    recall: float
    target_precision: float
    positives: int

    def to_dict(self) -> dict[str, float | str | int]:
        """JSON-ready record."""
        return asdict(self)


def operating_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds (distinct scores, descending) with true and false positives at score >= t."""
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    # Keep the last index of each run of equal scores: "predict positive when p >= t" includes all ties.
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]
    return ps[last], tp[last], fp[last]


def threshold_for_precision(
    labels: np.ndarray, proba: np.ndarray, target_precision: float, min_true_positives: int = 5
) -> float | None:
    """Lowest threshold whose precision reaches the target with at least `min_true_positives`; None if none.

    Lowest = most recall among the thresholds meeting the target. A higher target can only remove
    candidates, so the result never decreases as the target rises.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    y, p = known_pairs(labels, proba)
    if y.sum() == 0:
        return None
    thresholds, tp, fp = operating_points(y, p)
    ok = (tp / np.maximum(tp + fp, 1) >= target_precision) & (tp >= min_true_positives)
    if not ok.any():
        return None
    return float(thresholds[ok].min())


def best_f1_threshold(labels: np.ndarray, proba: np.ndarray) -> float:
    """Threshold with the highest F1 on the given labels (0.5 when there are no positives)."""
    y, p = known_pairs(labels, proba)
    if y.sum() == 0:
        return 0.5
    thresholds, tp, fp = operating_points(y, p)
    f1 = 2 * tp / (tp + fp + y.sum())
    return float(thresholds[int(np.argmax(f1))])


def known_pairs(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened labels and probabilities where the label is known (NaN = unknown dropped)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(proba, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and probabilities differ in size: {y.shape} vs {p.shape}")
    known = ~np.isnan(y)
    return y[known].astype(np.int64), p[known]


def _precision_recall_at(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    precision = tp / max(float(pred.sum()), 1.0)
    recall = tp / max(float(np.sum(y == 1)), 1.0)
    return precision, recall


def choose_threshold(
    labels: np.ndarray,
    proba: np.ndarray,
    target_precision: float,
    min_true_positives: int = 5,
    default: float = 0.5,
) -> ThresholdChoice:
    """Threshold meeting the target precision; else the best-F1 threshold; else `default` (no positives)."""
    y, p = known_pairs(labels, proba)
    positives = int(y.sum())
    t = threshold_for_precision(y, p, target_precision, min_true_positives)
    method: Literal["target_precision", "best_f1", "default"]
    if t is not None:
        method = "target_precision"
    elif positives > 0:
        t, method = best_f1_threshold(y, p), "best_f1"
    else:
        t, method = default, "default"
    precision, recall = _precision_recall_at(y, p, t)
    return ThresholdChoice(
        threshold=t,
        method=method,
        precision=precision,
        recall=recall,
        target_precision=target_precision,
        positives=positives,
    )


def reliability_bins(labels: np.ndarray, proba: np.ndarray, bins: int = 15) -> dict[str, list[float | None]]:
    """Mean predicted probability, observed frequency (None for an empty bin) and count per equal-width bin."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(proba, dtype=np.float64).ravel()
    known = ~np.isnan(y)
    y, p = y[known], p[known]
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    conf: list[float | None] = []
    freq: list[float | None] = []
    count: list[float | None] = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        count.append(float(n))
        conf.append(float(p[m].mean()) if n else float((edges[b] + edges[b + 1]) / 2))
        freq.append(float(y[m].mean()) if n else None)
    return {"confidence": conf, "frequency": freq, "count": count}


def decision_thresholds(
    labels: np.ndarray,
    proba: np.ndarray,
    names: list[str],
    targets: dict[str, float],
    defaults: dict[str, float],
    min_true_positives: int = 5,
) -> tuple[dict[str, float], dict[str, dict[str, float | str | int]]]:
    """Per-category decision thresholds (best validation F1) and the target-precision operating points.

    The decision threshold labels a ticket; the stricter target-precision point is what routing may trust
    without a person. Categories with fewer than `min_true_positives` validation positives keep `defaults`.
    """
    thresholds: dict[str, float] = {}
    points: dict[str, dict[str, float | str | int]] = {}
    for j, name in enumerate(names):
        y = labels[:, j]
        positives = int(np.nansum(y))
        thresholds[name] = round(best_f1_threshold(y, proba[:, j]) if positives >= min_true_positives
                                 else defaults[name], 6)
        points[name] = choose_threshold(y, proba[:, j], targets[name], min_true_positives,
                                        default=defaults[name]).to_dict()
    return thresholds, points
