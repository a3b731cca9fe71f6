"""The promotion gate: a challenger replaces the champion only when every policy rule holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from triage.taxonomy import Promotion


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict with both numbers (in points, 0..100)."""

    rule: str
    passed: bool
    champion: float | None
    challenger: float | None
    allowed_drop: float
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """All rule verdicts; `passed` only when every rule passed."""

    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        """True when no rule failed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.results if not r.passed]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready record for MLflow and the CLI."""
        return {"passed": self.passed, "results": [asdict(r) for r in self.results]}


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _rule(name: str, champion: float | None, challenger: float | None, allowed_drop: float) -> RuleResult:
    if champion is None or challenger is None:
        return RuleResult(name, True, champion, challenger, allowed_drop,
                          f"{name}: not measured on both models (champion {_pts(champion)}, "
                          f"challenger {_pts(challenger)}); not gated")
    drop = champion - challenger
    passed = drop <= allowed_drop + 1e-9
    verb = "within" if passed else "exceeds"
    return RuleResult(name, passed, champion, challenger, allowed_drop,
                      f"{name}: champion {champion:.2f}, challenger {challenger:.2f} "
                      f"(drop {max(drop, 0.0):.2f} points {verb} the allowed {allowed_drop:.2f})")


def _points(metrics: Mapping[str, float], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else 100.0 * float(value)


def evaluate_gate(
    champion: Mapping[str, float],
    challenger: Mapping[str, float],
    rules: Promotion,
    categories: Sequence[str],
    prefix: str = "",
) -> GateDecision:
    """Apply the policy's promotion rules to two metric dicts measured on the same test set.

    Metric names are those of `triage.metrics.summary` (`macro_f1`, `<category>_recall`,
    `severity_recall_critical`), optionally behind `prefix` (e.g. "golden/").
    """
    results = [_rule(f"{prefix}macro_f1", _points(champion, f"{prefix}macro_f1"),
                     _points(challenger, f"{prefix}macro_f1"), rules.max_macro_f1_drop)]
    for name in categories:
        key = f"{prefix}{name}_recall"
        if key in champion:
            # A category the challenger no longer predicts has recall 0, not "unmeasured".
            results.append(_rule(key, _points(champion, key), _points(challenger, key) or 0.0,
                                 rules.max_category_recall_drop))
    key = f"{prefix}severity_recall_critical"
    results.append(_rule(key, _points(champion, key), _points(challenger, key), rules.max_critical_recall_drop))
    return GateDecision(tuple(results))
