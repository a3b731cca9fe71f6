"""The scorer picks the routing its model card supports: both guarantees, the precision one, or the policy rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from triage.conformal import SEVERE, ClearPoint, OperatingPoint, assured_decision, guarded_decision
from triage.models.base import ModelCard, Prediction
from triage.routing import decide
from triage.scorer import Scorer
from triage.taxonomy import load_policy
from triage.tickets import Ticket

POLICY = load_policy()
CATS = list(POLICY.category_names)


class FixedClassifier:
    """Returns one fixed probability row per text: `rows[text]`."""

    def __init__(self, rows: dict[str, tuple[dict[str, float], list[float]]], extra: dict[str, Any]) -> None:
        self.rows = rows
        self.card = ModelCard(kind="fake", categories=CATS, severity_levels=list(POLICY.severity_names),
                              policy_name=POLICY.name, policy_version=POLICY.version, policy_digest=POLICY.digest,
                              extra=extra)

    def predict(self, texts: Sequence[str]) -> Prediction:
        cats = np.array([[self.rows[t][0].get(c, 0.01) for c in CATS] for t in texts])
        sev = np.array([self.rows[t][1] for t in texts])
        return Prediction(categories=cats, severity=sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


def _op(name: str, threshold: float | None) -> dict[str, Any]:
    """A precision point fitted for the policy's own target, as training under this policy fits it."""
    target = POLICY.category(name).target_precision
    return OperatingPoint(name, target, threshold, 0.96, 0.95, 0.5, 100, 60, 500).to_dict()


def _clear(name: str, threshold: float, max_miss: float | None = None) -> dict[str, Any]:
    """An auto-clear point fitted for the policy's own miss share (unless `max_miss` says otherwise)."""
    if max_miss is None:
        max_miss = POLICY.routing.max_severe_miss if name == SEVERE else POLICY.category(name).max_auto_clear_miss
    return ClearPoint(name, max_miss, threshold, True, 0.04, 0.02, 0.7, 100, 1000).to_dict()


NONE_SEV = [0.9, 0.1, 0.0, 0.0, 0.0]
MAYBE_SEVERE = [0.6, 0.05, 0.0, 0.2, 0.15]  # P(high or critical) = 0.35, most likely none
ROWS = {
    "borderline hate": ({"hate": 0.3}, NONE_SEV),  # a confident no by min_confidence, above a 0.2 clear bound
    "maybe severe": ({}, MAYBE_SEVERE),
    "clean": ({}, NONE_SEV),
    "spam": ({"spam": 0.97}, NONE_SEV),
}
OPERATING = {n: _op(n, 0.9) for n in CATS}
CLEAR = {n: _clear(n, 0.2) for n in CATS}


def _routes(extra: dict[str, Any]) -> dict[str, str]:
    scorer = Scorer(FixedClassifier(ROWS, extra), POLICY)
    scored = scorer.score([Ticket(id=t, text=t) for t in ROWS])
    return {s.ticket.id: s.decision.route for s in scored}


def test_a_card_with_clear_points_routes_with_both_guarantees() -> None:
    extra = {"operating_points": OPERATING, "clear_points": CLEAR, "severity_guard": _clear(SEVERE, 0.3)}
    scorer = Scorer(FixedClassifier(ROWS, extra), POLICY)
    scored = scorer.score([Ticket(id=t, text=t) for t in ROWS])
    for s in scored:
        expected = assured_decision(s.scores, POLICY, scorer._points, scorer._clear, scorer._thresholds)
        assert s.decision == expected
    assert {s.ticket.id: s.decision.route for s in scored} == {
        "borderline hate": "review", "maybe severe": "review", "clean": "auto", "spam": "auto"}
    spam = next(s for s in scored if s.ticket.id == "spam")
    assert spam.decision.prediction_set == ("spam",)


def test_a_card_with_operating_points_only_keeps_the_precision_guarded_path() -> None:
    extra = {"operating_points": OPERATING}
    scorer = Scorer(FixedClassifier(ROWS, extra), POLICY)
    for s in scorer.score([Ticket(id=t, text=t) for t in ROWS]):
        guarded = guarded_decision(s.scores, POLICY, scorer._points, scorer._thresholds)
        assert (s.decision.route, s.decision.reasons) == (guarded.route, guarded.reasons)
    # The old rules review the 30% hate score (70% sure it is absent, 75% needed) but not the maybe-severe ticket.
    assert _routes(extra) == {"borderline hate": "review", "maybe severe": "auto", "clean": "auto", "spam": "auto"}


def test_a_card_without_points_uses_the_policy_rules() -> None:
    scorer = Scorer(FixedClassifier(ROWS, {}), POLICY)
    for s in scorer.score([Ticket(id=t, text=t) for t in ROWS]):
        assert s.decision == decide(s.scores, POLICY, scorer._thresholds)


def test_the_clear_bound_decides_where_min_confidence_would_not() -> None:
    # 0.22 hate: decide() is 78% sure it is absent (auto); the 0.2 clear bound sends it to review.
    rows = {"x": ({"hate": 0.22}, NONE_SEV)}
    with_clear = Scorer(FixedClassifier(rows, {"operating_points": OPERATING, "clear_points": CLEAR}), POLICY)
    without = Scorer(FixedClassifier(rows, {"operating_points": OPERATING}), POLICY)
    ticket = [Ticket(id="x", text="x")]
    assert without.score(ticket)[0].decision.route == "auto"
    assert with_clear.score(ticket)[0].decision.route == "review"


def test_a_policy_tightened_after_the_fit_reviews_what_the_cards_looser_points_would_let_through() -> None:
    # The card let 5% of violence skip review and asserted spam at 90% precision; the policy now asks 3% and 95%.
    extra = {"operating_points": {**OPERATING, "spam": {**_op("spam", 0.9), "target_precision": 0.9}},
             "clear_points": {**CLEAR, "violence": _clear("violence", 0.2, max_miss=0.05)},
             "severity_guard": _clear(SEVERE, 0.3)}
    assert POLICY.category("violence").max_auto_clear_miss < 0.05 and POLICY.category("spam").target_precision > 0.9
    scorer = Scorer(FixedClassifier(ROWS, extra), POLICY)
    scored = {s.ticket.id: s.decision for s in scorer.score([Ticket(id=t, text=t) for t in ROWS])}
    assert scored["clean"].route == "review"
    assert scored["clean"].reasons == ("violence: the model's auto-clear bound lets up to 5% skip review, the policy "
                                       "allows 3%; reviewed until the model is trained again",)
    assert scored["spam"].route == "review" and scored["spam"].prediction_set == ()
    assert any("no operating point meeting its 95% precision target" in r for r in scored["spam"].reasons)
    assert scorer.promises_not_kept() == {
        "spam": "precision point fitted for 90%, the policy asks 95%: its positives are reviewed",
        "violence": "auto-clear point lets up to 5% skip review, the policy allows 3%: not auto-cleared"}
    # The same card under the policy it was fitted for routes both automatically.
    fitted = {**extra, "operating_points": OPERATING, "clear_points": CLEAR}
    assert _routes(fitted)["clean"] == "auto" and _routes(fitted)["spam"] == "auto"


def test_a_looser_severity_guard_is_not_relied_on_either() -> None:
    loose = POLICY.routing.max_severe_miss + 0.05
    extra = {"operating_points": OPERATING, "clear_points": CLEAR, "severity_guard": _clear(SEVERE, 0.3, loose)}
    scorer = Scorer(FixedClassifier(ROWS, extra), POLICY)
    clean = scorer.score([Ticket(id="clean", text="clean")])[0].decision
    assert clean.route == "review" and clean.reasons[0].startswith("severity: the model's auto-clear bound")
    # A stricter point than the policy asks keeps its promise: nothing changes.
    strict = {**extra, "severity_guard": _clear(SEVERE, 0.3, POLICY.routing.max_severe_miss / 2)}
    assert _routes(strict)["clean"] == "auto"
    assert Scorer(FixedClassifier(ROWS, strict), POLICY).promises_not_kept() == {}
