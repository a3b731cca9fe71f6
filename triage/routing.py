"""Routing and priority: from calibrated scores and the policy to auto or review, with reasons."""

from __future__ import annotations

import math
from collections.abc import Mapping

from triage.taxonomy import Policy
from triage.tickets import NO_CATEGORY, Decision, Route, Scores


def percent(p: float) -> str:
    """A score or rate as a whole percentage for a reason string ("n/a" when undefined)."""
    return f"{100 * p:.0f}%" if math.isfinite(p) else "n/a"


def category_confidence(p: float, threshold: float) -> float:
    """How sure the model is of its yes/no for one category: p when it says yes, 1 - p when it says no."""
    return p if p >= threshold else 1.0 - p


def expected_severity(severity: Mapping[str, float], policy: Policy) -> float:
    """Probability-weighted severity rank scaled to [0, 1] (0 = none, 1 = the top level)."""
    top = len(policy.severity_names) - 1
    return sum(severity.get(name, 0.0) * k / top for k, name in enumerate(policy.severity_names))


def priority(scores: Scores, policy: Policy) -> float:
    """Queue priority in [0, 1]: rises with expected severity and with the weighted category probability."""
    weighted = max(
        (p * policy.category(name).weight for name, p in scores.categories.items()),
        default=0.0,
    )
    w = policy.routing.severity_weight
    return float(min(1.0, max(0.0, w * expected_severity(scores.severity, policy) + (1 - w) * weighted)))


def decide(scores: Scores, policy: Policy, thresholds: Mapping[str, float] | None = None,
           unsure_rule: bool = True) -> Decision:
    """Route one ticket: review when unsure, ambiguous or always-review by policy; auto otherwise.

    `thresholds` are the model's own per-category decision thresholds (chosen on validation); the
    policy's are used for any category they do not name. `unsure_rule=False` leaves out the fixed
    `min_confidence` rule, for callers that route on fitted bounds instead (triage.conformal.assured_decision).
    """
    chosen = thresholds or {}
    th = {name: chosen.get(name, policy.category(name).threshold) for name in scores.categories}
    positives = sorted(
        (name for name, p in scores.categories.items() if p >= th[name]),
        key=lambda n: scores.categories[n],
        reverse=True,
    )
    # The ticket is filed under the most harmful likely violation: weight x probability (a threat that is also an
    # insult is violence), while the ambiguity rule below still compares the two highest probabilities.
    category = max(positives, key=lambda n: scores.categories[n] * policy.category(n).weight, default=NO_CATEGORY)
    level = max(scores.severity, key=lambda s: scores.severity[s]) if scores.severity else policy.severity_names[0]
    reasons: list[str] = []

    uncertain = []
    confidence = 1.0
    for name, p in scores.categories.items():
        conf = category_confidence(p, th[name])
        confidence = min(confidence, conf)
        if unsure_rule and conf < policy.category(name).min_confidence:
            uncertain.append((name, p))
    for name, p in sorted(uncertain, key=lambda x: -x[1]):
        need = policy.category(name).min_confidence
        reasons.append(f"unsure about {name}: score {percent(p)}, needs {percent(need)} confidence either way")

    if len(positives) >= 2:
        a, b = positives[0], positives[1]
        gap = scores.categories[a] - scores.categories[b]
        if gap < policy.routing.ambiguity_margin:
            reasons.append(
                f"{a} and {b} are too close to tell apart "
                f"({percent(scores.categories[a])} vs {percent(scores.categories[b])})"
            )

    for name in positives:
        if policy.category(name).always_review:
            reasons.append(f"{name} is always reviewed by a person (score {percent(scores.categories[name])})")

    if scores.severity and policy.severity[policy.severity_rank(level)].always_review:
        reasons.append(f"severity {level} is always reviewed by a person ({percent(scores.severity[level])})")

    route: Route = "review" if reasons else "auto"
    if route == "auto":
        if category == NO_CATEGORY:
            top = max(scores.categories.items(), key=lambda kv: kv[1], default=(NO_CATEGORY, 0.0))
            reasons.append(f"confident no violation (highest: {top[0]} {percent(top[1])})")
        else:
            reasons.append(f"confident {category} ({percent(scores.categories[category])}), severity {level}")
    return Decision(
        category=category,
        severity=level,
        priority=round(priority(scores, policy), 6),
        route=route,
        reasons=tuple(reasons),
        confidence=round(confidence, 6),
    )
