"""Selection strategies on hand-written probability matrices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from triage.selection import (
    STRATEGIES,
    Diverse,
    Entropy,
    ExampleGuided,
    LeastConfidence,
    Margin,
    RandomSelection,
    SeverityWeighted,
    Strategy,
    entropy,
    example_guided,
    expected_severity,
    get_strategy,
    k_center_greedy,
    least_confidence,
    margin,
    review_order,
    scores_to_matrices,
    severity_weighted,
)
from triage.taxonomy import load_policy
from triage.tickets import Scores

# Three categories; rows chosen so each strategy has a different favourite.
CATS = np.array([
    [0.02, 0.01, 0.03],  # 0: surely nothing
    [0.55, 0.01, 0.02],  # 1: one category near a coin flip
    [0.40, 0.40, 0.40],  # 2: three categories fairly unsure (most entropy), but none at 0.5
    [0.97, 0.93, 0.01],  # 3: two confident categories nearly tied (small margin between them)
    [0.99, 0.02, 0.01],  # 4: surely category 0
])
# Severity none/low/medium/high/critical.
SEV = np.array([
    [1.0, 0.0, 0.0, 0.0, 0.0],
    [0.9, 0.1, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.2, 0.8],
    [0.0, 0.5, 0.5, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0],
])


def test_least_confidence_prefers_the_coin_flip() -> None:
    scores = least_confidence(CATS)
    assert int(np.argmax(scores)) == 1
    assert scores[1] == pytest.approx(2 * (1 - 0.55))
    assert scores[0] == pytest.approx(2 * (1 - 0.97))
    assert LeastConfidence().select(CATS, SEV, 2).tolist() == [1, 2]


def test_margin_prefers_a_near_tie_between_two_answers() -> None:
    scores = margin(CATS)
    # row 3: 0.97 vs 0.93 -> margin 0.04; row 1: 0.55 vs none 0.45 -> 0.10; row 2: 0.60 (none) vs 0.40 -> 0.20
    assert scores[3] == pytest.approx(1 - 0.04)
    assert scores[1] == pytest.approx(1 - 0.10)
    assert Margin().select(CATS, SEV, 3).tolist() == [3, 1, 2]


def test_entropy_adds_up_uncertainty_over_categories() -> None:
    scores = entropy(CATS)
    assert int(np.argmax(scores)) == 2
    h = -(0.4 * np.log2(0.4) + 0.6 * np.log2(0.6))
    assert scores[2] == pytest.approx(h)
    assert Entropy().select(CATS, SEV, 1).tolist() == [2]


def test_expected_severity_is_the_scaled_rank() -> None:
    assert expected_severity(SEV).tolist() == pytest.approx([0.0, 0.025, 0.95, 0.375, 0.5])


def test_severity_weighted_puts_uncertain_and_severe_first() -> None:
    cats = np.array([[0.5, 0.01], [0.5, 0.01], [0.05, 0.01]])
    sev = np.array([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0], [0, 0, 0, 0, 1.0]])
    # Rows 0 and 1 are equally uncertain; row 1 may be critical. Row 2 is severe but certain.
    assert SeverityWeighted().select(cats, sev, 3).tolist() == [1, 0, 2]
    s = severity_weighted(cats, sev, weight=0.5)
    assert s[1] == pytest.approx(2 * s[0])
    assert severity_weighted(cats, sev, weight=0.0).tolist() == pytest.approx(entropy(cats).tolist())
    with pytest.raises(ValueError, match="weight"):
        SeverityWeighted(weight=1.5)


def test_random_is_seeded_distinct_and_bounded() -> None:
    a = RandomSelection().select(CATS, SEV, 3, rng=np.random.default_rng(7))
    b = RandomSelection().select(CATS, SEV, 3, rng=np.random.default_rng(7))
    assert a.tolist() == b.tolist()
    assert len(set(a.tolist())) == 3
    assert sorted(RandomSelection().select(CATS, SEV, 99, rng=np.random.default_rng(0)).tolist()) == [0, 1, 2, 3, 4]


def test_k_center_spreads_a_batch_over_near_duplicates() -> None:
    # Four copies of one spam message, one other spam, one hate tweet.
    e = np.array([[1.0, 0.0], [1.0, 0.001], [0.999, 0.0], [1.0, 0.002], [0.7, 0.7], [0.0, 1.0]])
    assert k_center_greedy(e, 3, first=0).tolist() == [0, 5, 4]


def test_diverse_takes_the_best_then_spreads() -> None:
    cats = np.array([[0.50], [0.51], [0.49], [0.52], [0.45], [0.99]])
    sev = np.full((6, 2), 0.5)
    e = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    plain = LeastConfidence().select(cats, sev, 2)
    assert plain.tolist() == [0, 1]  # two copies of the same text
    diverse = Diverse(LeastConfidence(), candidates=3).select(cats, sev, 2, embeddings=e)
    assert diverse.tolist() == [0, 4]  # the best, then the different one among the 6 best candidates
    with pytest.raises(ValueError, match="embeddings"):
        Diverse(LeastConfidence()).select(cats, sev, 2)


def test_ties_break_by_row_order_without_rng() -> None:
    cats = np.full((4, 2), 0.5)
    sev = np.full((4, 3), 1 / 3)
    assert Entropy().select(cats, sev, 4).tolist() == [0, 1, 2, 3]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="2-d"):
        Entropy().select(np.array([0.5, 0.5]), SEV, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        least_confidence(np.array([[1.5]]))
    with pytest.raises(ValueError, match="rows"):
        Margin().select(CATS, SEV[:2], 1)
    with pytest.raises(ValueError, match="k must be"):
        Margin().select(CATS, SEV, -1)
    with pytest.raises(ValueError, match="unknown selection strategy 'nope'; known: random"):
        get_strategy("nope")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_registered_strategy_returns_distinct_valid_indices(name: str) -> None:
    strategy = get_strategy(name)
    assert isinstance(strategy, Strategy)
    rng = np.random.default_rng(3)
    cats = rng.random((40, 4))
    sev = rng.dirichlet(np.ones(5), size=40)
    emb = rng.normal(size=(40, 8))
    out = strategy.select(cats, sev, 10, embeddings=emb, rng=np.random.default_rng(1))
    assert out.dtype == np.int64 and len(out) == 10 and len(set(out.tolist())) == 10
    assert out.min() >= 0 and out.max() < 40
    assert len(strategy.select(cats[:0], sev[:0], 5, embeddings=emb[:0], rng=rng)) == 0


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 5)), elements=st.floats(0, 1)),
       st.integers(0, 15))
def test_uncertainty_strategies_return_the_top_scores(cats: np.ndarray, k: int) -> None:
    sev = np.full((len(cats), 3), 1 / 3)
    for score, strategy in ((least_confidence, LeastConfidence()), (entropy, Entropy()), (margin, Margin())):
        s = score(cats)
        chosen = strategy.select(cats, sev, k)
        assert len(chosen) == min(k, len(cats))
        rest = np.setdiff1d(np.arange(len(cats)), chosen)
        if len(chosen) and len(rest):
            assert s[chosen].min() >= s[rest].max() - 1e-12
        assert np.all(np.diff(s[chosen]) <= 1e-12)  # most useful first


def test_review_order_ranks_scored_tickets_with_the_configured_strategy() -> None:
    policy = load_policy()
    none = {"none": 1.0}
    tickets = [
        Scores(categories={"spam": 0.99}, severity=none),
        Scores(categories={"spam": 0.52, "fraud": 0.3}, severity=none),
        Scores(categories={"hate": 0.7, "harassment": 0.68}, severity=none),
    ]
    cats, sev = scores_to_matrices(tickets, policy)
    assert cats.shape == (3, len(policy.category_names)) and sev.shape == (3, len(policy.severity_names))
    assert cats[1, policy.category_names.index("fraud")] == 0.3 and sev[:, 0].tolist() == [1.0, 1.0, 1.0]
    assert review_order(tickets, policy, get_strategy("least_confidence")) == [1, 2, 0]
    assert review_order(tickets, policy, get_strategy("margin")) == [2, 1, 0]
    assert review_order([], policy, get_strategy("entropy")) == []


# ---------------------------------------------------------------------------------------------- new categories


def test_example_guided_puts_likely_members_first_where_uncertainty_alone_would_not() -> None:
    # column 0: a trained category, unsure on row 0; column 1: a new category whose examples head likes row 2.
    p = np.array([[0.5, 0.02], [0.9, 0.05], [0.97, 0.6], [0.1, 0.3]])
    sev = np.full((4, 2), 0.5)
    assert LeastConfidence().select(p, sev, 1)[0] == 0
    guided = ExampleGuided(columns=(1,), thresholds=(0.45,), explore=0.0)
    assert list(guided.select(p, sev, 4)[:2]) == [2, 3]
    assert guided.score(p)[2] > 1.0 > guided.score(p)[0]


def test_example_guided_mixes_similarity_with_uncertainty() -> None:
    s = example_guided(np.array([[0.9], [0.5], [0.1], [0.0]]), np.array([0.5]), weight=0.5)
    assert s[1] > s[0] > s[2] > s[3]  # unsure first, then likely members, then the clear no's
    np.testing.assert_allclose(example_guided(np.array([[0.8]]), None, weight=1.0), [0.8])
    with pytest.raises(ValueError, match="thresholds must have one value per column"):
        example_guided(np.zeros((2, 2)), np.array([0.5]))


def test_example_guided_sends_a_random_audit_sample_first() -> None:
    n = 20_000
    p = np.zeros((n, 2))
    p[:, 1] = np.linspace(0.0, 0.9, n)  # the new category's scores: the top rows are its candidates
    sev = np.full((n, 2), 0.5)
    guided = ExampleGuided(columns=(1,), thresholds=(0.45,), explore=0.01)
    useful = guided.score(p, np.random.default_rng(3))
    audit = np.flatnonzero(useful > 2.0)
    assert 140 < len(audit) < 260  # about 1% of the rows
    assert (useful[audit] < 3.0).all()
    assert (p[audit, 1] < 0.3).mean() > 0.2  # drawn from every ticket, not only from the candidates
    first = guided.select(p, sev, 25, rng=np.random.default_rng(3))
    assert set(first.tolist()) <= set(audit.tolist())
    again = guided.select(p, sev, 25, rng=np.random.default_rng(3))
    assert first.tolist() == again.tolist()  # reproducible with a seeded generator
    plain = ExampleGuided(columns=(1,), thresholds=(0.45,), explore=0.0).select(p, sev, 25)
    assert p[plain, 1].min() > p[first, 1].min()
    assert (LeastConfidence().select(p, sev, 5) == ExampleGuided(explore=0.5).select(p, sev, 5)).all()
    with pytest.raises(ValueError, match="explore"):
        ExampleGuided(explore=1.5)


def test_get_strategy_example_guided_watches_the_policys_seeded_categories() -> None:
    from tests.seeded import NEW, seeded_policy_dict
    from triage.taxonomy import parse_policy

    policy = parse_policy(seeded_policy_dict())
    strategy = get_strategy("example_guided", policy)
    assert isinstance(strategy, ExampleGuided)
    assert strategy.columns == (policy.category_names.index(NEW),)
    assert get_strategy("example_guided") == ExampleGuided()


def test_review_service_uses_the_example_guided_score_for_a_seeded_policy() -> None:
    from tests.seeded import NEW, seeded_policy_dict
    from triage.review.service import review_strategy, usefulness_scores
    from triage.taxonomy import parse_policy

    policy = parse_policy(seeded_policy_dict())
    strategy = review_strategy("example_guided", policy)
    assert isinstance(strategy, ExampleGuided) and strategy.explore > 0.0
    strategy = dataclasses.replace(strategy, explore=0.0)  # no audit picks: the order is the score's
    j = policy.category_names.index(NEW)
    p = np.full((3, len(policy.category_names)), 0.02)
    p[0, 0] = 0.5  # unsure about hate only
    p[1, j] = 0.7  # a likely member of the new category
    sev = np.full((3, len(policy.severity_names)), 0.2)
    useful = usefulness_scores(strategy, p, sev)
    assert useful[1] > useful[0] > useful[2]
