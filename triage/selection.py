"""Which tickets experts should label first: usefulness scores on probability matrices, and strategies that select.

Scoring is separate from selecting. The score functions are pure numpy on the model's calibrated probabilities
(higher = more useful to label); a strategy is a small class with one method, `select`, that returns row indices
ordered most useful first. Category probabilities are independent sigmoids (multi-label, shape (n, C)); severity
probabilities are a distribution over the ordered levels (shape (n, L)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from triage.taxonomy import Policy
from triage.tickets import Scores

_EPS = 1e-12


# ---------------------------------------------------------------------------------------------- scores


def _check(proba: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be a 2-d matrix (n, columns), got shape {p.shape}")
    if p.size and (np.nanmin(p) < 0.0 or np.nanmax(p) > 1.0 or np.isnan(p).any()):
        raise ValueError(f"{name} must hold probabilities in [0, 1] without NaN")
    return p


def least_confidence(proba_categories: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1]: 1 - the confidence of the least sure yes/no, the same confidence routing uses.

    Per category the confidence is max(p, 1 - p); a ticket is as uncertain as its least certain category.
    """
    p = _check(proba_categories, "proba_categories")
    if p.shape[1] == 0:
        return np.zeros(len(p))
    confidence = np.maximum(p, 1.0 - p).min(axis=1)
    return 2.0 * (1.0 - confidence)


def margin(proba_categories: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1]: breaking ties, 1 - (best - second best) over the categories and "no violation".

    "No violation" scores 1 - max(p): a ticket is a tie when two categories are close (hate vs harassment) or
    when its best category is close to nothing at all.
    """
    p = _check(proba_categories, "proba_categories")
    none = 1.0 - (p.max(axis=1, keepdims=True) if p.shape[1] else np.zeros((len(p), 1)))
    full = np.concatenate([p, none], axis=1)
    if full.shape[1] < 2:
        return np.zeros(len(p))
    top2 = -np.sort(-full, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy(proba_categories: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1]: mean binary entropy (bits) over categories; every unsure category adds to it."""
    p = np.clip(_check(proba_categories, "proba_categories"), _EPS, 1.0 - _EPS)
    if p.shape[1] == 0:
        return np.zeros(len(p))
    h = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return np.asarray(h.mean(axis=1))


def expected_severity(proba_severity: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1]: probability-weighted severity rank, 0 = the lowest level, 1 = the top one."""
    s = _check(proba_severity, "proba_severity")
    levels = s.shape[1]
    if levels < 2:
        return np.zeros(len(s))
    total = np.maximum(s.sum(axis=1), _EPS)
    return np.asarray((s @ np.arange(levels)) / total / (levels - 1))


def severity_weighted(proba_categories: np.ndarray, proba_severity: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """(n,) in [0, 1]: entropy scaled up by expected severity, so uncertain and possibly severe tickets come first.

    score = entropy * ((1 - weight) + weight * expected_severity): weight 0 is plain entropy, weight 1 ignores
    uncertain tickets that are surely harmless.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    u = entropy(proba_categories)
    s = expected_severity(proba_severity)
    if len(u) != len(s):
        raise ValueError(f"proba_categories has {len(u)} rows but proba_severity has {len(s)}")
    return np.asarray(u * ((1.0 - weight) + weight * s))


def example_guided(proba_new: np.ndarray, thresholds: np.ndarray | None = None, weight: float = 0.5) -> np.ndarray:
    """(n,) in [0, 1]: likely members of new categories first, mixed with uncertainty about them.

    `proba_new` (n, k) holds only the columns of categories still growing from seed examples (examples head or
    light head). Per column: weight * p + (1 - weight) * (1 - |p - t| / max(t, 1 - t)), t its decision threshold;
    a ticket scores its best column. Uncertainty alone never finds the first positives of a rare category: its
    head is sure "no" everywhere; the similarity term sends the nearest texts to the experts first.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    p = _check(proba_new, "proba_new")
    if p.shape[1] == 0:
        return np.zeros(len(p))
    t = np.full(p.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.shape != (p.shape[1],):
        raise ValueError(f"thresholds must have one value per column ({p.shape[1]}), got shape {t.shape}")
    uncertainty = 1.0 - np.abs(p - t) / np.maximum(t, 1.0 - t)
    return np.asarray((weight * p + (1.0 - weight) * uncertainty).max(axis=1))


# ---------------------------------------------------------------------------------------------- selecting


@runtime_checkable
class Strategy(Protocol):
    """Chooses k rows to label, most useful first."""

    def select(
        self,
        proba_categories: np.ndarray,
        proba_severity: np.ndarray,
        k: int,
        embeddings: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Indices (k,) into the rows, ordered most useful first; fewer when there are fewer rows."""
        ...


def _count(proba_categories: np.ndarray, proba_severity: np.ndarray, k: int) -> int:
    n = np.asarray(proba_categories).shape[0]
    if np.asarray(proba_severity).shape[0] != n:
        raise ValueError(f"proba_categories has {n} rows but proba_severity has {np.asarray(proba_severity).shape[0]}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return min(int(k), n)


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of the k highest scores, highest first; ties broken at random with `rng`, else by row order."""
    s = np.asarray(scores, dtype=np.float64)
    k = min(k, len(s))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    perm = rng.permutation(len(s)) if rng is not None else np.arange(len(s))
    order = perm[np.argsort(-s[perm], kind="stable")]
    return order[:k].astype(np.int64)


@dataclass(frozen=True)
class RandomSelection:
    """The control: k rows uniformly at random."""

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """k distinct random rows."""
        k = _count(proba_categories, proba_severity, k)
        gen = rng if rng is not None else np.random.default_rng()
        return gen.choice(np.asarray(proba_categories).shape[0], size=k, replace=False).astype(np.int64)


@dataclass(frozen=True)
class LeastConfidence:
    """Rows whose least certain category is closest to a coin flip."""

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """Top k by `least_confidence`."""
        return top_k(least_confidence(proba_categories), _count(proba_categories, proba_severity, k), rng)


@dataclass(frozen=True)
class Margin:
    """Breaking ties: rows whose two best answers (a category or "no violation") are closest."""

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """Top k by `margin`."""
        return top_k(margin(proba_categories), _count(proba_categories, proba_severity, k), rng)


@dataclass(frozen=True)
class Entropy:
    """Rows with the most total uncertainty over all categories."""

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """Top k by `entropy`."""
        return top_k(entropy(proba_categories), _count(proba_categories, proba_severity, k), rng)


@dataclass(frozen=True)
class SeverityWeighted:
    """Uncertain and possibly severe first: entropy scaled by expected severity."""

    weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """Top k by `severity_weighted`."""
        scores = severity_weighted(proba_categories, proba_severity, self.weight)
        return top_k(scores, _count(proba_categories, proba_severity, k), rng)


def k_center_greedy(embeddings: np.ndarray, k: int, first: int = 0) -> np.ndarray:
    """Greedy k-center order over the rows: start at `first`, then always the row farthest from those chosen.

    Returns (min(k, n),) indices; a batch spread over the embedding space, so twenty near-copies of one spam
    message count as one.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d matrix (n, d), got shape {e.shape}")
    n = len(e)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if not 0 <= first < n:
        raise ValueError(f"first must index a row (0..{n - 1}), got {first}")
    sq = np.einsum("ij,ij->i", e, e)
    chosen = [first]
    dist = np.maximum(sq - 2.0 * e @ e[first] + sq[first], 0.0)
    dist[first] = -1.0
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))  # ties: the earlier row, i.e. the more useful candidate
        chosen.append(nxt)
        dist = np.minimum(dist, np.maximum(sq - 2.0 * e @ e[nxt] + sq[nxt], 0.0))
        dist[chosen] = -1.0
    return np.asarray(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Diverse:
    """A diversity step on top of another strategy: its best `candidates * k` rows, then k-center over embeddings.

    The first pick is the base strategy's best row; each next pick is the candidate farthest from every pick so far.
    """

    base: Strategy
    candidates: int = 10

    def __post_init__(self) -> None:
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """k rows spread over the embedding space among the base strategy's most useful ones."""
        k = _count(proba_categories, proba_severity, k)
        if embeddings is None:
            raise ValueError("the diversity step needs embeddings (n, d) of the rows")
        e = np.asarray(embeddings)
        if e.ndim != 2 or len(e) != np.asarray(proba_categories).shape[0]:
            raise ValueError(f"embeddings must have shape (n, d) with n = {np.asarray(proba_categories).shape[0]}, "
                             f"got {e.shape}")
        pool = self.base.select(proba_categories, proba_severity, self.candidates * k, embeddings, rng)
        return pool[k_center_greedy(e[pool], k, first=0)]


EXPLORE = 0.002  # ExampleGuided: the share of tickets sent to the front at random (1 in 500)


@dataclass(frozen=True)
class ExampleGuided:
    """New categories first: `example_guided` on their columns, a random audit sample, then the least confident.

    `columns` index the category columns that are still growing from seed examples; without any, it is
    least confidence. A ticket's usefulness is its example-guided score plus 1 when it is among the new
    categories' likely members or unsure (score >= 0.5), so those come before every other uncertain ticket.

    Each ticket is also, with probability `explore`, an audit pick: usefulness 2 + a uniform draw, ahead of the
    candidates. A head fitted only on the seeds' nearest neighbours learns "looks like a seed" and places its
    boundary badly; a few typical tickets in each round show it what the category is not. Per ticket, so it works
    on a stream as on a pool: of a 2,500-ticket queue, about 5 audit picks come first. benchmarks/new_category.py
    measures this very order (seed similarity mixed with uncertainty, then audit picks) against random rounds.
    """

    columns: tuple[int, ...] = ()
    thresholds: tuple[float, ...] = ()
    weight: float = 0.5
    explore: float = EXPLORE

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if not 0.0 <= self.explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {self.explore}")
        if self.thresholds and len(self.thresholds) != len(self.columns):
            raise ValueError(f"{len(self.thresholds)} thresholds for {len(self.columns)} columns")

    def score(self, proba_categories: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """(n,) usefulness, comparable across batches: in (2, 3) for audit picks, [1, 2] for new-category
        candidates, else [0, 1). `rng` draws the audit picks (a fresh generator when None)."""
        p = _check(proba_categories, "proba_categories")
        base = least_confidence(p) * 0.999
        if not self.columns:
            return base
        cols = list(self.columns)
        guided = example_guided(p[:, cols], np.array(self.thresholds) if self.thresholds else None, self.weight)
        useful = np.where(guided >= 0.5, 1.0 + guided, base)
        if self.explore > 0.0 and len(p):
            gen = rng if rng is not None else np.random.default_rng()
            audit = gen.random(len(p)) < self.explore
            useful = np.where(audit, 2.0 + 0.999 * gen.random(len(p)), useful)
        return np.asarray(useful)

    def select(self, proba_categories: np.ndarray, proba_severity: np.ndarray, k: int,
               embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """Top k by `score` (the order the review queue delivers in)."""
        k = _count(proba_categories, proba_severity, k)
        return top_k(self.score(proba_categories, rng), k, rng)


def seeded_columns(policy: Policy) -> tuple[int, ...]:
    """Columns (policy order) of the categories that list seed examples."""
    return tuple(policy.category_names.index(n) for n in policy.seeded_categories)


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "random": RandomSelection,
    "least_confidence": LeastConfidence,
    "margin": Margin,
    "entropy": Entropy,
    "severity_weighted": SeverityWeighted,
    "diverse_entropy": lambda: Diverse(Entropy()),
    "diverse_severity_weighted": lambda: Diverse(SeverityWeighted()),
    "example_guided": ExampleGuided,
}


def get_strategy(name: str, policy: Policy | None = None) -> Strategy:
    """A fresh strategy by its registry name; ValueError names the known ones.

    `example_guided` looks at the policy's seeded categories (none without a policy).
    """
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown selection strategy {name!r}; known: {', '.join(STRATEGIES)}") from None
    if name == "example_guided" and policy is not None:
        return ExampleGuided(columns=seeded_columns(policy),
                             thresholds=tuple(policy.category(n).threshold for n in policy.seeded_categories))
    return factory()


def scores_to_matrices(scores: Sequence[Scores], policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Category (n, C) and severity (n, L) probability matrices in policy order; a missing name counts as 0."""
    cats = np.array([[s.categories.get(c, 0.0) for c in policy.category_names] for s in scores], dtype=np.float64)
    sev = np.array([[s.severity.get(v, 0.0) for v in policy.severity_names] for s in scores], dtype=np.float64)
    return (cats.reshape(len(scores), len(policy.category_names)),
            sev.reshape(len(scores), len(policy.severity_names)))


def review_order(
    scores: Sequence[Scores],
    policy: Policy,
    strategy: Strategy,
    embeddings: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """Every ticket's position in the review queue, most useful to label first (what the review push sends first)."""
    cats, sev = scores_to_matrices(scores, policy)
    return [int(i) for i in strategy.select(cats, sev, len(scores), embeddings, rng)]
