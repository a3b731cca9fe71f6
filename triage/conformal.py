"""Per-category operating points with a precision guarantee, fitted on held-out (validation) data.

Split-conformal style: the model is fitted on train; on the validation split, for each category, we look for the
lowest score threshold t such that a finite-sample lower confidence bound on the precision of "score >= t"
(Clopper-Pearson, one-sided, level 1 - delta) reaches the category's target precision from the policy. Tickets
scoring at or above t may be auto-routed to that category; below it a person decides. The operating point carries
the validation precision there (`expected_precision`) and its lower bound.

Caveat kept honest: the bound holds for a threshold fixed in advance; taking the lowest of many passing thresholds
makes it approximate, which is why training/routing_report.py checks the achieved precision on the test split.
Because the lower bound does not depend on the target, a higher target can only remove passing thresholds: the
chosen threshold never decreases as the target rises (None = no threshold passes = never auto-assert).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import beta

from triage.calibration import known_pairs, operating_points
from triage.routing import decide, percent
from triage.taxonomy import Policy
from triage.tickets import Decision, Scores

DEFAULT_DELTA = 0.1


def clopper_pearson_lower(successes: np.ndarray | int, trials: np.ndarray | int, delta: float = DEFAULT_DELTA) -> Any:
    """One-sided Clopper-Pearson lower bound of a binomial proportion at level 1 - delta (0 when no successes)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(s < 0) or np.any(s > n):
        raise ValueError("successes must be between 0 and trials")
    safe = np.where(s > 0, s, 1.0)
    lower = np.where(s > 0, beta.ppf(delta, safe, n - safe + 1.0), 0.0)
    return lower if lower.ndim else float(lower)


@dataclass(frozen=True)
class OperatingPoint:
    """Where one category may be auto-asserted, and the precision validation data promises there."""

    category: str
    target_precision: float
    threshold: float | None
    expected_precision: float | None
    precision_lower_bound: float | None
    recall: float | None
    selected: int
    positives: int
    known: int
    delta: float = DEFAULT_DELTA
    best_lower_bound: float | None = None

    @property
    def certified(self) -> bool:
        """True when validation supports the target at some threshold."""
        return self.threshold is not None

    def admits(self, score: float) -> bool:
        """Whether a ticket with this category score may be auto-routed to the category."""
        return self.threshold is not None and score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (for the model card)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> OperatingPoint:
        """Inverse of `to_dict`."""
        return cls(**dict(raw))


def precision_threshold(
    labels: np.ndarray,
    proba: np.ndarray,
    target_precision: float,
    delta: float = DEFAULT_DELTA,
    min_true_positives: int = 1,
) -> float | None:
    """Lowest threshold t whose precision lower bound over known labels with score >= t reaches the target.

    `labels` are 0/1 with NaN for unknown (ignored). None when no threshold passes. Non-decreasing in the target.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    y, p = known_pairs(labels, proba)
    if len(y) == 0 or y.sum() == 0:
        return None
    thresholds, tp, fp = operating_points(y, p)
    lower = clopper_pearson_lower(tp, tp + fp, delta)
    ok = (lower >= target_precision) & (tp >= min_true_positives)
    if not ok.any():
        return None
    return float(thresholds[ok].min())


def best_precision_bound(labels: np.ndarray, proba: np.ndarray, delta: float = DEFAULT_DELTA) -> float | None:
    """The highest precision lower bound any threshold reaches: the strictest target validation could certify."""
    y, p = known_pairs(labels, proba)
    if len(y) == 0 or y.sum() == 0:
        return None
    _, tp, fp = operating_points(y, p)
    return float(np.max(clopper_pearson_lower(tp, tp + fp, delta)))


def expected_precision(labels: np.ndarray, proba: np.ndarray, threshold: float | None) -> float | None:
    """Precision over known labels with score >= threshold (None when the threshold selects nothing)."""
    if threshold is None:
        return None
    y, p = known_pairs(labels, proba)
    sel = p >= threshold
    if not sel.any():
        return None
    return float(y[sel].mean())


def fit_operating_point(
    category: str,
    labels: np.ndarray,
    proba: np.ndarray,
    target_precision: float,
    delta: float = DEFAULT_DELTA,
) -> OperatingPoint:
    """The operating point of one category from its validation labels (NaN = unknown) and calibrated scores."""
    y, p = known_pairs(labels, proba)
    t = precision_threshold(y, p, target_precision, delta)
    positives = int(y.sum())
    best = best_precision_bound(y, p, delta)
    best = None if best is None else round(best, 6)
    if t is None:
        return OperatingPoint(category, target_precision, None, None, None, None, 0, positives, len(y), delta, best)
    sel = p >= t
    tp = int(y[sel].sum())
    return OperatingPoint(
        category=category,
        target_precision=target_precision,
        threshold=t,
        expected_precision=round(tp / int(sel.sum()), 6),
        precision_lower_bound=round(float(clopper_pearson_lower(tp, int(sel.sum()), delta)), 6),
        recall=round(tp / positives, 6),
        selected=int(sel.sum()),
        positives=positives,
        known=len(y),
        delta=delta,
        best_lower_bound=best,
    )


def fit_operating_points(
    labels: np.ndarray,
    proba: np.ndarray,
    categories: Sequence[str],
    policy: Policy,
    delta: float = DEFAULT_DELTA,
) -> dict[str, OperatingPoint]:
    """Operating points for every column: `labels` (n, C) with NaN unknown, `proba` (n, C), targets from the policy."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2 or y.shape[1] != len(categories):
        raise ValueError(f"labels {y.shape} and proba {p.shape} must both be (n, {len(categories)})")
    return {
        name: fit_operating_point(name, y[:, j], p[:, j], policy.category(name).target_precision, delta)
        for j, name in enumerate(categories)
    }


def points_from_card(extra: Mapping[str, Any]) -> dict[str, OperatingPoint]:
    """Operating points stored in a model card's `extra["operating_points"]` (empty when absent)."""
    raw = extra.get("operating_points") or {}
    return {name: OperatingPoint.from_dict(v) for name, v in raw.items()}


def prediction_set(
    scores: Mapping[str, float],
    points: Mapping[str, OperatingPoint],
    thresholds: Mapping[str, float] | None = None,
) -> tuple[str, ...]:
    """Categories asserted with their precision guarantee, best first.

    A category is in the set when its score reaches its operating point and, if `thresholds` are given, its
    decision threshold too (a category the model says no to is never asserted).
    """
    th = thresholds or {}
    chosen = [name for name, p in scores.items()
              if name in points and points[name].admits(p) and p >= th.get(name, 0.0)]
    return tuple(sorted(chosen, key=lambda n: -scores[n]))


def guarded_decision(
    scores: Scores,
    policy: Policy,
    points: Mapping[str, OperatingPoint],
    thresholds: Mapping[str, float] | None = None,
) -> Decision:
    """decide(), then review every predicted category the precision guarantee does not cover.

    A category the model says yes to (score >= its decision threshold) but below its operating point, or with no
    certified operating point, cannot be auto-routed: the ticket goes to review with a reason naming the numbers.
    """
    decision = decide(scores, policy, thresholds)
    chosen = thresholds or {}
    extra: list[str] = []
    for name, p in sorted(scores.categories.items(), key=lambda kv: -kv[1]):
        if p < chosen.get(name, policy.category(name).threshold):
            continue
        reason = _unasserted_reason(name, p, points.get(name), policy)
        if reason:
            extra.append(reason)
    if not extra:
        return decision
    reasons = decision.reasons if decision.route == "review" else ()
    return replace(decision, route="review", reasons=(*reasons, *extra))


def _unasserted_reason(name: str, p: float, point: OperatingPoint | None, policy: Policy) -> str | None:
    """Why a category the model says yes to cannot be auto-asserted (None when its precision guarantee covers it)."""
    if point is None or point.threshold is None:
        return (f"{name} ({percent(p)}) has no operating point meeting its "
                f"{percent(policy.category(name).target_precision)} precision target")
    if p < point.threshold:
        return (f"{name} at {percent(p)} is below its {percent(point.target_precision)}-precision operating "
                f"point ({percent(point.threshold)})")
    return None


def _fine_pct(p: float) -> str:
    """A percentage precise enough to compare a small score with a small bound (4.1% vs 3.9%, not 4% vs 4%)."""
    if not math.isfinite(p):
        return "n/a"
    pct = 100 * p
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%" if pct >= 1 else f"{pct:.2f}%"


# --- The other side: what may be auto-cleared -------------------------------------------------------------------
#
# A ticket is auto-cleared for a category when its score is below the category's clear threshold. The share of the
# category's violating tickets that are cleared is its miss rate (1 - recall at the threshold). On validation we take
# the highest threshold whose one-sided Clopper-Pearson upper bound on the miss rate is at most the policy's
# `max_auto_clear_miss`. With too few positives no threshold can be certified (with n positives and no miss the bound
# is 1 - delta^(1/n): 45 positives are needed for 5% at delta 0.1); the point then says it is not certified and its
# threshold is the point estimate (floor(max_miss * n) misses), raised to the model's decision threshold when that is
# higher (see fit_clear_point), so one outlying positive cannot send every ticket to review. Thresholds are
# rounded down to 6 decimals, the precision of the scores routing sees, so rounding never clears a ticket validation
# did not. The same rule, on P(severity >= the first always-reviewed level), guards severity.

SEVERE = "severity>=high"


def clopper_pearson_upper(failures: np.ndarray | int, trials: np.ndarray | int, delta: float = DEFAULT_DELTA) -> Any:
    """One-sided Clopper-Pearson upper bound of a binomial proportion at level 1 - delta (1 when all fail)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    k = np.asarray(failures, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("failures must be between 0 and trials")
    upper = np.where(k < n, beta.ppf(1.0 - delta, k + 1.0, np.maximum(n - k, 1.0)), 1.0)
    return upper if upper.ndim else float(upper)


@dataclass(frozen=True)
class ClearPoint:
    """Below `threshold` a ticket may be auto-cleared for `category`; the miss rate validation promises there."""

    category: str
    max_miss: float
    threshold: float
    certified: bool
    miss_upper_bound: float | None
    validation_miss: float | None
    cleared_share: float | None
    positives: int
    known: int
    delta: float = DEFAULT_DELTA

    def clears(self, score: float) -> bool:
        """Whether a ticket with this score may skip review as far as this category goes."""
        return score < self.threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (for the model card)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ClearPoint:
        """Inverse of `to_dict`."""
        return cls(**dict(raw))


def fit_clear_point(category: str, labels: np.ndarray, proba: np.ndarray, max_miss: float,
                    delta: float = DEFAULT_DELTA, fallback: float = 0.0,
                    caught: np.ndarray | None = None) -> ClearPoint:
    """The highest clear threshold whose miss-rate upper bound on validation is at most `max_miss`.

    `labels` 0/1 with NaN unknown. Without positives, `fallback` is the threshold (0 = clear nothing). `caught`
    (bool, same length) marks rows another rule already sends to review: a positive among them is never a miss,
    whatever its score, so only the others' scores set the threshold (the miss rate is still over all positives).
    With too few positives for any bound to reach `max_miss`, the point says it is not certified and the
    threshold is the point estimate (floor(max_miss * n) misses allowed), raised to `fallback` (the model's decision
    threshold) when that is higher: with a few dozen positives the point estimate is the lowest positive score,
    one outlier that would send every ticket to review; uncertified, the category reviews what the model flags,
    and the severity guard (fitted on what the category rules let through) still reviews the severe ones.
    """
    known = ~np.isnan(np.asarray(labels, dtype=np.float64))
    y, p = known_pairs(labels, proba)
    n = int(y.sum())
    if n == 0:
        return ClearPoint(category, max_miss, float(fallback), False, None, None,
                          float(np.mean(p < fallback)) if len(p) else None, 0, len(y), delta)
    free = np.ones(len(y), dtype=bool) if caught is None else ~np.asarray(caught, dtype=bool)[known]
    exposed = np.sort(p[(y == 1) & free])
    upper = clopper_pearson_upper(np.arange(n + 1), n, delta)
    ok = np.flatnonzero(upper <= max_miss)
    certified = ok.size > 0
    # Allowing k misses: clear everything below the (k+1)-th lowest exposed positive score.
    k = int(ok.max()) if certified else math.floor(max_miss * n)
    threshold = 1.0 if k >= len(exposed) else math.floor(float(exposed[k]) * 1e6) / 1e6
    if not certified:
        threshold = max(threshold, float(fallback))
    missed = int(np.sum(exposed < threshold))
    return ClearPoint(
        category=category, max_miss=max_miss, threshold=threshold, certified=certified,
        miss_upper_bound=round(float(clopper_pearson_upper(missed, n, delta)), 6),
        validation_miss=round(missed / n, 6), cleared_share=round(float(np.mean(p < threshold)), 6),
        positives=n, known=len(y), delta=delta,
    )


def fit_clear_points(labels: np.ndarray, proba: np.ndarray, categories: Sequence[str], policy: Policy,
                     fallbacks: Mapping[str, float] | None = None) -> dict[str, ClearPoint]:
    """Clear points for every column of `labels`/`proba` (n, C), targets from the policy."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 2 or y.shape[1] != len(categories):
        raise ValueError(f"labels {y.shape} and proba {p.shape} must both be (n, {len(categories)})")
    fb = fallbacks or {}
    return {
        name: fit_clear_point(name, y[:, j], p[:, j], policy.category(name).max_auto_clear_miss,
                              policy.routing.guarantee_delta, fb.get(name, 0.0))
        for j, name in enumerate(categories)
    }


def first_severe_level(policy: Policy) -> int:
    """Rank of the lowest severity level the policy always reviews (the 'severe' side of the guard)."""
    ranks = [k for k, level in enumerate(policy.severity) if level.always_review]
    return min(ranks) if ranks else len(policy.severity) - 1


def severe_probability(severity: np.ndarray | Mapping[str, float], policy: Policy) -> Any:
    """P(severity >= the first always-reviewed level): (n,) from an (n, L) matrix, or a float from a mapping."""
    first = first_severe_level(policy)
    if isinstance(severity, Mapping):
        return float(sum(severity.get(name, 0.0) for name in policy.severity_names[first:]))
    return np.asarray(severity)[:, first:].sum(axis=1)


def fit_severity_guard(severity_ranks: np.ndarray, severity_proba: np.ndarray, policy: Policy,
                       caught: np.ndarray | None = None) -> ClearPoint:
    """The clear point of P(severity >= high) from validation ranks (-1 unknown) and level probabilities (n, L);
    `caught` marks tickets the category rules already send to review (see `fit_clear_point`)."""
    ranks = np.asarray(severity_ranks)
    labels = np.where(ranks < 0, np.nan, (ranks >= first_severe_level(policy)).astype(np.float64))
    return fit_clear_point(SEVERE, labels, severe_probability(severity_proba, policy), policy.routing.max_severe_miss,
                           policy.routing.guarantee_delta, caught=caught)


def reviewed_by_categories(proba: np.ndarray, names: Sequence[str], clear: Mapping[str, ClearPoint],
                           points: Mapping[str, OperatingPoint], policy: Policy) -> np.ndarray:
    """Which rows (n,) the category rules of `assured_decision` send to review: some category neither cleared nor
    asserted inside its precision guarantee, or asserted but always reviewed."""
    out = np.zeros(proba.shape[0], dtype=bool)
    for j, name in enumerate(names):
        p = proba[:, j]
        point = points.get(name)
        asserted = (p >= point.threshold) if point is not None and point.threshold is not None else np.zeros_like(
            out)
        if policy.category(name).always_review:
            out |= asserted
        out |= (p >= clear[name].threshold) & ~asserted
    return out


def clear_points_from_card(extra: Mapping[str, Any]) -> dict[str, ClearPoint]:
    """Clear points (and the severity guard, under SEVERE) stored on a model card (empty when absent)."""
    raw = dict(extra.get("clear_points") or {})
    if extra.get("severity_guard"):
        raw[SEVERE] = extra["severity_guard"]
    return {name: ClearPoint.from_dict(v) for name, v in raw.items()}


def looser_than_policy(points: Mapping[str, OperatingPoint], clear: Mapping[str, ClearPoint], policy: Policy,
                       ) -> tuple[set[str], dict[str, float]]:
    """Promises a model card makes more loosely than the policy now asks (the policy was tightened after the fit):
    the categories whose precision point was fitted for a lower target, and, per auto-clear point fitted for a
    larger miss share (the severity guard under SEVERE), the share the policy allows now. Such a point cannot
    keep the policy's promise, so serving must not rely on it until the points are fitted again."""
    known = set(policy.category_names)
    low_precision = {name for name, pt in points.items() if name in known
                     and pt.target_precision < policy.category(name).target_precision - 1e-9}
    allowed = {name: policy.category(name).max_auto_clear_miss for name in clear if name in known}
    if SEVERE in clear:
        allowed[SEVERE] = policy.routing.max_severe_miss
    too_loose = {name: want for name, want in allowed.items() if clear[name].max_miss > want + 1e-9}
    return low_precision, too_loose


def assured_decision(
    scores: Scores,
    policy: Policy,
    points: Mapping[str, OperatingPoint],
    clear: Mapping[str, ClearPoint],
    thresholds: Mapping[str, float] | None = None,
) -> Decision:
    """Route with both promises: auto only when every category is either cleared (below its clear point) or
    asserted inside its precision guarantee, and the severity guard clears the ticket; otherwise review.

    The fixed `min_confidence` rule of `decide` is replaced by the two fitted bounds.
    """
    base = decide(scores, policy, thresholds, unsure_rule=False)
    chosen = prediction_set(scores.categories, points, thresholds)
    th = thresholds or {}
    reasons = [r for r in base.reasons if not r.startswith("confident ")]
    for name, p in sorted(scores.categories.items(), key=lambda kv: -kv[1]):
        if name in chosen:
            continue  # asserted with its precision guarantee (always-review categories already have a reason)
        point = clear.get(name)
        if p >= th.get(name, policy.category(name).threshold):
            reason = _unasserted_reason(name, p, points.get(name), policy)
        elif point is None:
            need = policy.category(name).min_confidence
            reason = (f"unsure about {name}: score {percent(p)}, needs {percent(need)} confidence either way"
                      if 1.0 - p < need else None)
        elif not point.clears(p):
            reason = (f"{name} at {_fine_pct(p)} is above its auto-clear bound ({_fine_pct(point.threshold)}; at most "
                      f"{percent(point.max_miss)} of {name} tickets may skip review)")
        else:
            reason = None
        if reason:
            reasons.append(reason)
    guard = clear.get(SEVERE)
    if guard is not None and scores.severity:
        severe = severe_probability(scores.severity, policy)
        if not guard.clears(severe):
            reasons.append(f"may be {policy.severity_names[first_severe_level(policy)]} severity or worse "
                           f"({_fine_pct(severe)}; bound {_fine_pct(guard.threshold)})")
    if not reasons:
        return replace(base, prediction_set=chosen, expected_precision=_promised(chosen, points))
    return replace(base, route="review", reasons=tuple(reasons), prediction_set=chosen,
                   expected_precision=_promised(chosen, points))


def _promised(chosen: Sequence[str], points: Mapping[str, OperatingPoint]) -> dict[str, float]:
    return {c: p.expected_precision for c in chosen if (p := points[c]).expected_precision is not None}


def fit_routing_points(labels: np.ndarray, proba: np.ndarray, severity_proba: np.ndarray, severity_ranks: np.ndarray,
                       names: Sequence[str], thresholds: Mapping[str, float], policy: Policy) -> dict[str, Any]:
    """Both routing promises fitted on held-out scores, ready for a model card's `extra`: the precision operating
    points, the auto-clear points per category (a category without validation positives falls back to its
    decision threshold, uncertified) and the severity guard, which only has to catch the severe tickets the
    category rules would let through."""
    points = fit_operating_points(labels, proba, names, policy)
    clear = fit_clear_points(labels, proba, names, policy, fallbacks=thresholds)
    caught = reviewed_by_categories(np.asarray(proba), names, clear, points, policy)
    return {
        "operating_points": {n: pt.to_dict() for n, pt in points.items()},
        "clear_points": {n: pt.to_dict() for n, pt in clear.items()},
        "severity_guard": fit_severity_guard(severity_ranks, severity_proba, policy, caught=caught).to_dict(),
    }
