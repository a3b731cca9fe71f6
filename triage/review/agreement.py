"""Inter-annotator agreement on tasks labelled by several reviewers: percent agreement and Krippendorff's alpha."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, permutations
from typing import Any

# One unit (a task, for one question) holds the values its annotators gave.
Units = Sequence[Sequence[Hashable]]


def krippendorff_alpha_nominal(units: Units) -> float | None:
    """Krippendorff's alpha for nominal values; units with fewer than 2 values are ignored.

    None when it is undefined: no pairable values, or every value the same (no expected disagreement).
    """
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for a, b in permutations(values, 2):
            coincidence[(a, b)] += 1.0 / (m - 1)
    if not coincidence:
        return None
    totals: defaultdict[Hashable, float] = defaultdict(float)
    for (a, _), w in coincidence.items():
        totals[a] += w
    n = sum(totals.values())
    observed = sum(w for (a, b), w in coincidence.items() if a != b)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def pairwise_agreement(units: Units) -> float | None:
    """Share of annotator pairs (over all units) that gave the same value; None without pairs."""
    agree = total = 0
    for values in units:
        for a, b in combinations(values, 2):
            total += 1
            agree += a == b
    return agree / total if total else None


@dataclass(frozen=True)
class Agreement:
    """Agreement over the tasks that at least two reviewers labelled."""

    tasks: int
    annotations: int
    category_alpha: Mapping[str, float | None] = field(default_factory=dict)
    category_pairwise: Mapping[str, float | None] = field(default_factory=dict)
    severity_alpha: float | None = None
    severity_pairwise: float | None = None
    exact_match: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able form, numbers rounded to 4 places."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)
        return {
            "tasks": self.tasks,
            "annotations": self.annotations,
            "exact_match": r(self.exact_match),
            "severity_alpha": r(self.severity_alpha),
            "severity_pairwise": r(self.severity_pairwise),
            "category_alpha": {k: r(v) for k, v in self.category_alpha.items()},
            "category_pairwise": {k: r(v) for k, v in self.category_pairwise.items()},
        }


def agreement(
    labels_by_task: Mapping[Any, Sequence[tuple[frozenset[str], str | None]]],
    categories: Sequence[str],
) -> Agreement:
    """Agreement from each task's per-annotator labels (category set, severity), one entry per annotator."""
    shared = {t: v for t, v in labels_by_task.items() if len(v) >= 2}
    cat_units = {c: [[c in cats for cats, _ in v] for v in shared.values()] for c in categories}
    sev_units = [[s for _, s in v if s is not None] for v in shared.values()]
    set_units = [[cats for cats, _ in v] for v in shared.values()]
    return Agreement(
        tasks=len(shared),
        annotations=sum(len(v) for v in shared.values()),
        category_alpha={c: krippendorff_alpha_nominal(u) for c, u in cat_units.items()},
        category_pairwise={c: pairwise_agreement(u) for c, u in cat_units.items()},
        severity_alpha=krippendorff_alpha_nominal(sev_units),
        severity_pairwise=pairwise_agreement(sev_units),
        exact_match=pairwise_agreement(set_units),
    )
