"""The promotion gate: a challenger replaces the champion unless a policy rule shows, with confidence, a drop.

Each rule compares the two models on the same test examples and puts an interval on the challenger-minus-champion
difference (in points, 0..100): an exact conditional interval (Clopper-Pearson on the discordant pairs, as in
McNemar's test) for recalls, which are means over few positives, and a seeded paired randomization interval for
macro-F1 (see `paired_macro_f1_interval`). A rule
fails only when the whole interval lies below `-allowed_drop`, passes when none of it does, and is inconclusive
(reported, not blocking) when the sample cannot tell: a recall drop on five examples neither passes nor fails by
chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from triage.conformal import clopper_pearson_lower
from triage.taxonomy import Promotion

Verdict = Literal["pass", "fail", "inconclusive", "not measured"]


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict: both point estimates and the interval on their difference (points, 0..100)."""

    rule: str
    passed: bool
    champion: float | None
    challenger: float | None
    allowed_drop: float
    detail: str
    verdict: Verdict = "pass"
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0
    method: str = ""


@dataclass(frozen=True)
class GateDecision:
    """All rule verdicts; `passed` unless a rule failed (inconclusive rules are reported, not blocking)."""

    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        """True when no rule failed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.results if not r.passed]

    @property
    def inconclusive(self) -> list[RuleResult]:
        """The rules whose sample could not tell a drop beyond the tolerance from none."""
        return [r for r in self.results if r.verdict == "inconclusive"]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready record for MLflow and the CLI."""
        return {"passed": self.passed, "inconclusive": [r.rule for r in self.inconclusive],
                "results": [asdict(r) for r in self.results]}


@dataclass(frozen=True)
class PairedDecisions:
    """Both models' decisions on the same test examples.

    `labels` is (n, C) with 1/0 and NaN where unknown; `champion`/`challenger` are (n, C) booleans (the category
    is predicted at each model's own threshold); `severity` is (n,) level indices with -1 where unknown;
    `champion_severity`/`challenger_severity` are (n,) predicted level indices; `critical` indexes the critical
    level (-1 when the policy has none).
    """

    categories: tuple[str, ...]
    labels: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray
    severity: np.ndarray
    champion_severity: np.ndarray
    challenger_severity: np.ndarray
    critical: int

    def __post_init__(self) -> None:
        n, c = len(self.labels), len(self.categories)
        for name in ("labels", "champion", "challenger"):
            if np.shape(getattr(self, name)) != (n, c):
                raise ValueError(f"{name} must have shape ({n}, {c}), got {np.shape(getattr(self, name))}")
        for name in ("severity", "champion_severity", "challenger_severity"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.shape(getattr(self, name))}")


# ---------------------------------------------------------------------------------------------- intervals


def paired_recall_interval(champion_hits: np.ndarray, challenger_hits: np.ndarray,
                           confidence: float) -> tuple[float, float, float]:
    """(difference, low, high) of challenger minus champion recall over the same positives, as fractions.

    Exact and conditional on the discordant pairs (McNemar): of the m positives that only one model finds, the
    number only the champion finds is Binomial(m, p); the difference is m(1 - 2p)/n, and a two-sided
    Clopper-Pearson interval on p bounds it. No discordant pair: the difference is exactly 0.
    """
    a = np.asarray(champion_hits, dtype=bool)
    b = np.asarray(challenger_hits, dtype=bool)
    n = len(a)
    if n == 0 or len(b) != n:
        raise ValueError("both models need hits on the same, non-empty set of positives")
    only_champion = int(np.sum(a & ~b))
    m = only_champion + int(np.sum(b & ~a))
    diff = (m - 2 * only_champion) / n
    if m == 0:
        return diff, 0.0, 0.0
    tail = (1.0 - confidence) / 2
    p_low = clopper_pearson_lower(only_champion, m, tail)
    p_high = 1.0 - clopper_pearson_lower(m - only_champion, m, tail)
    return diff, m * (1 - 2 * p_high) / n, m * (1 - 2 * p_low) / n


def _macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean F1 over the present categories, row-wise; arrays are (B, C)."""
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=np.float64), where=denom > 0)
    counts = present.sum(axis=1)
    return np.divide((f1 * present).sum(axis=1), counts, out=np.zeros(len(f1)), where=counts > 0)


def paired_macro_f1_interval(labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, confidence: float,
                             samples: int, seed: int) -> tuple[float, float, float, float, float]:
    """(champion, challenger, difference, low, high) of macro-F1 as fractions: a seeded paired randomization
    interval.

    Categories without a known positive are left out, as in `triage.metrics.category_report`. Each replicate swaps
    the two models' decisions on every example with probability 1/2, which is what "the models are the same" would
    allow; the interval is the observed difference minus the quantiles of those swapped differences. Only
    examples on which the models disagree move it, so a change on five examples gets an interval as wide as five
    examples warrant. (A percentile bootstrap does not: resampling five flipped positives still shows the same
    loss in almost every replicate, and it would call a five-example drop certain.)
    """
    y = np.nan_to_num(labels, nan=-1.0)
    keep = (y == 1).any(axis=0)
    pos, neg = (y == 1)[:, keep], (y == 0)[:, keep]
    a, b = np.asarray(champion, bool)[:, keep], np.asarray(challenger, bool)[:, keep]
    counts = [np.stack([(pos & p).sum(0), (neg & p).sum(0), (pos & ~p).sum(0)]).astype(np.float64) for p in (a, b)]
    present = np.ones((1, int(keep.sum())), dtype=bool)
    point = [float(_macro_f1(c[0][None], c[1][None], c[2][None], present)[0]) for c in counts]
    diff = point[1] - point[0]
    moved = np.flatnonzero((a != b).any(axis=1))  # only disagreements change anything when swapped
    if len(moved) == 0:
        return point[0], point[1], 0.0, 0.0, 0.0
    # per moved example, what it adds to (tp, fp, fn) of the challenger minus the champion: (len(moved), 3, C)
    def cells(p: np.ndarray) -> np.ndarray:
        return np.stack([pos & p, neg & p, pos & ~p], axis=1)[moved].astype(np.float64)

    delta = cells(b) - cells(a)
    rng = np.random.default_rng(seed)
    null = []
    for start in range(0, samples, 500):
        swap = rng.random((min(500, samples - start), len(moved))) < 0.5
        shift = np.einsum("rm,mkc->rkc", swap.astype(np.float64), delta)  # moved from challenger to champion
        f_a = _macro_f1(counts[0][0] + shift[:, 0], counts[0][1] + shift[:, 1], counts[0][2] + shift[:, 2], present)
        f_b = _macro_f1(counts[1][0] - shift[:, 0], counts[1][1] - shift[:, 1], counts[1][2] - shift[:, 2], present)
        null.append(f_b - f_a)
    tail = (1.0 - confidence) / 2
    q_low, q_high = np.quantile(np.concatenate(null), [tail, 1.0 - tail])
    return point[0], point[1], diff, float(diff - q_high), float(diff - q_low)


# ---------------------------------------------------------------------------------------------- rules


def _verdict(low: float, high: float, allowed_drop: float) -> Verdict:
    if high < -allowed_drop - 1e-9:
        return "fail"
    if low >= -allowed_drop - 1e-9:
        return "pass"
    return "inconclusive"


def _result(rule: str, champion: float, challenger: float, diff: float, low: float, high: float,
            allowed_drop: float, n: int, method: str, confidence: float) -> RuleResult:
    """A rule's verdict from fractions; numbers reported in points."""
    c, h, d, lo, hi = (100.0 * v for v in (champion, challenger, diff, low, high))
    verdict = _verdict(lo, hi, allowed_drop)
    what = {"pass": f"no drop beyond the allowed {allowed_drop:.2f}",
            "fail": f"a drop beyond the allowed {allowed_drop:.2f}",
            "inconclusive": f"inconclusive (n={n}): the sample cannot tell a drop beyond the allowed "
                            f"{allowed_drop:.2f} from none; not blocking"}[verdict]
    detail = (f"{rule}: champion {c:.2f}, challenger {h:.2f}, difference {d:+.2f} points, "
              f"{confidence:.0%} interval [{lo:+.2f}, {hi:+.2f}] ({method}, n={n}): {what}")
    return RuleResult(rule, verdict != "fail", c, h, allowed_drop, detail, verdict, d, lo, hi, n, method)


def _not_measured(rule: str, allowed_drop: float) -> RuleResult:
    return RuleResult(rule, True, None, None, allowed_drop, f"{rule}: no labelled example to measure it on; "
                      "not gated", "not measured")


def _recall_rule(rule: str, positives: np.ndarray, champion_hits: np.ndarray, challenger_hits: np.ndarray,
                 allowed_drop: float, confidence: float) -> RuleResult:
    if not positives.any():
        return _not_measured(rule, allowed_drop)
    a, b = champion_hits[positives], challenger_hits[positives]
    diff, low, high = paired_recall_interval(a, b, confidence)
    return _result(rule, float(a.mean()), float(b.mean()), diff, low, high, allowed_drop, int(positives.sum()),
                   "exact paired", confidence)


def evaluate_gate(decisions: PairedDecisions, rules: Promotion, prefix: str = "") -> GateDecision:
    """Apply the policy's promotion rules to both models' decisions on the same test set.

    Rules: `<prefix>macro_f1` (paired randomization), `<prefix><category>_recall` for every category with a known
    positive (exact paired), `<prefix>severity_recall_critical` ("predicted critical or above" over critical
    examples, exact paired). Seeded by `rules.seed`: the same inputs always give the same verdicts.
    """
    d = decisions
    conf = rules.confidence
    champ_f1, chall_f1, diff, low, high = paired_macro_f1_interval(d.labels, d.champion, d.challenger, conf,
                                                                   rules.replicates, rules.seed)
    results = [_result(f"{prefix}macro_f1", champ_f1, chall_f1, diff, low, high, rules.max_macro_f1_drop,
                       len(d.labels), "paired randomization", conf)]
    champion, challenger = np.asarray(d.champion, bool), np.asarray(d.challenger, bool)
    for j, name in enumerate(d.categories):
        positives = d.labels[:, j] == 1
        if positives.any():
            results.append(_recall_rule(f"{prefix}{name}_recall", positives, champion[:, j], challenger[:, j],
                                        rules.max_category_recall_drop, conf))
    rule = f"{prefix}severity_recall_critical"
    if d.critical < 0:
        results.append(_not_measured(rule, rules.max_critical_recall_drop))
    else:
        critical = np.asarray(d.severity) == d.critical
        results.append(_recall_rule(rule, critical, np.asarray(d.champion_severity) >= d.critical,
                                    np.asarray(d.challenger_severity) >= d.critical,
                                    rules.max_critical_recall_drop, conf))
    return GateDecision(tuple(results))


def paired_decisions(categories: Sequence[str], labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray,
                     severity: np.ndarray, champion_severity: np.ndarray, challenger_severity: np.ndarray,
                     levels: Sequence[str]) -> PairedDecisions:
    """`PairedDecisions` with the critical level looked up by name."""
    critical = list(levels).index("critical") if "critical" in levels else -1
    return PairedDecisions(tuple(categories), np.asarray(labels, dtype=np.float64), np.asarray(champion, bool),
                           np.asarray(challenger, bool), np.asarray(severity), np.asarray(champion_severity),
                           np.asarray(challenger_severity), critical)
