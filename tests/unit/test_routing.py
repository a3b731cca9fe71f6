"""Routing and priority on hand-written scores; Hypothesis invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.routing import decide, priority
from triage.taxonomy import Policy
from triage.tickets import Scores

SEV_NONE = {"none": 0.9, "low": 0.1, "medium": 0.0, "high": 0.0, "critical": 0.0}


def cats(policy: Policy, **probs: float) -> dict[str, float]:
    out = {c: 0.01 for c in policy.category_names}
    out.update(probs)
    return out


def test_confident_clean_ticket_is_auto(policy: Policy) -> None:
    d = decide(Scores(cats(policy), SEV_NONE), policy)
    assert d.route == "auto" and d.category == "none"
    assert "confident no violation" in d.reasons[0]


def test_confident_spam_is_auto(policy: Policy) -> None:
    d = decide(Scores(cats(policy, spam=0.97), {"none": 0.05, "low": 0.9, "medium": 0.05, "high": 0, "critical": 0}),
               policy)
    assert (d.route, d.category, d.severity) == ("auto", "spam", "low")


def test_uncertain_category_goes_to_review(policy: Policy) -> None:
    d = decide(Scores(cats(policy, hate=0.55), SEV_NONE), policy)
    assert d.route == "review"
    assert any("unsure about hate: score 55%" in r for r in d.reasons)


def test_two_close_categories_go_to_review(policy: Policy) -> None:
    d = decide(Scores(cats(policy, hate=0.95, harassment=0.9), SEV_NONE), policy)
    assert d.route == "review"
    assert any("hate and harassment are too close" in r for r in d.reasons)


def test_always_review_category(policy: Policy) -> None:
    d = decide(Scores(cats(policy, child_safety=0.99), SEV_NONE), policy)
    assert d.route == "review" and d.category == "child_safety"
    assert any("child_safety is always reviewed" in r for r in d.reasons)


def test_always_review_severity(policy: Policy) -> None:
    sev = {"none": 0.0, "low": 0.0, "medium": 0.1, "high": 0.8, "critical": 0.1}
    d = decide(Scores(cats(policy, violence=0.97), sev), policy)
    assert d.route == "review"
    assert any("severity high is always reviewed" in r for r in d.reasons)


def test_model_thresholds_override_policy(policy: Policy) -> None:
    scores = Scores(cats(policy, spam=0.3), SEV_NONE)
    assert decide(scores, policy).category == "none"
    assert decide(scores, policy, {"spam": 0.25}).category == "spam"


def test_priority_orders_severity_and_weight(policy: Policy) -> None:
    crit = {"none": 0, "low": 0, "medium": 0, "high": 0.2, "critical": 0.8}
    low = {"none": 0.2, "low": 0.8, "medium": 0, "high": 0, "critical": 0}
    assert priority(Scores(cats(policy, child_safety=0.9), crit), policy) > priority(
        Scores(cats(policy, spam=0.9), low), policy)


probs = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
sev_levels = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=5, max_size=5).filter(lambda v: sum(v) > 0)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(probs, min_size=10, max_size=10), sev=sev_levels, bump=st.floats(0.0, 1.0))
def test_raising_the_top_category_never_moves_auto_to_review(policy: Policy, values, sev, bump) -> None:  # type: ignore[no-untyped-def]
    total = sum(sev)
    severity = {n: v / total for n, v in zip(policy.severity_names, sev, strict=True)}
    c = dict(zip(policy.category_names, values, strict=True))
    before = decide(Scores(c, severity), policy)
    top = max(c, key=lambda k: c[k])
    if c[top] < policy.category(top).threshold:
        return
    raised = dict(c)
    raised[top] = c[top] + (1.0 - c[top]) * bump
    after = decide(Scores(raised, severity), policy)
    if before.route == "auto":
        assert after.route == "auto", (c, raised, after.reasons)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(probs, min_size=10, max_size=10), sev=sev_levels)
def test_priority_in_unit_interval_and_monotone_in_severity(policy: Policy, values, sev) -> None:  # type: ignore[no-untyped-def]
    total = sum(sev)
    severity = {n: v / total for n, v in zip(policy.severity_names, sev, strict=True)}
    c = dict(zip(policy.category_names, values, strict=True))
    p = priority(Scores(c, severity), policy)
    assert 0.0 <= p <= 1.0
    worse = {n: 0.0 for n in policy.severity_names}
    worse["critical"] = 1.0
    assert priority(Scores(c, worse), policy) >= p - 1e-9


def test_the_ticket_is_filed_under_its_most_harmful_likely_violation(policy: Policy) -> None:
    # harassment scores higher, but violence weighs more in the policy: 0.55 x 0.9 > 0.7 x 0.6.
    assert policy.category("violence").weight > policy.category("harassment").weight
    d = decide(Scores(cats(policy, harassment=0.7, violence=0.55), {"none": 0.1, "low": 0.1, "medium": 0.1,
                                                                      "high": 0.6, "critical": 0.1}), policy)
    assert d.category == "violence"
    # Below its decision threshold a heavier category is not a candidate at all.
    d = decide(Scores(cats(policy, harassment=0.6, violence=0.3), {"none": 1.0}), policy)
    assert d.category == "harassment"


@settings(max_examples=300, deadline=None)
@given(values=st.lists(probs, min_size=10, max_size=10))
def test_the_category_is_a_flagged_one_with_the_highest_weighted_score(policy: Policy, values) -> None:  # type: ignore[no-untyped-def]
    c = dict(zip(policy.category_names, values, strict=True))
    d = decide(Scores(c, {"none": 1.0}), policy)
    flagged = [n for n, p in c.items() if p >= policy.category(n).threshold]
    if not flagged:
        assert d.category == "none"
        return
    assert d.category in flagged
    best = max(c[n] * policy.category(n).weight for n in flagged)
    assert c[d.category] * policy.category(d.category).weight == best
