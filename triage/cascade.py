"""A cascade: a cheap model scores every ticket; the full model only the tickets the cheap one is unsure of.

Per category c the cheap model's probability p_c is trusted outside an uncertain band [low_c, high_c]: below
low_c it is below almost every ticket the full model calls positive, above high_c above almost every ticket the
full model calls negative; and only when it is at least `margin` away from every point where the decision turns
(the category's threshold and its min-confidence edges), with the top severity level `margin` ahead of the next.
A ticket takes the fast path only when every category is sure, no always-review category is possible
(p_c >= low_c), and the cheap model's probability of an always-review severity (high, critical) is under a guard;
every other ticket is scored by the full model. The quantile `alpha` and the margin are fitted on validation: the
pair with the fewest full-model calls for which the cascade's decisions (route, category, severity) equal the
full model's on `min_agreement` of the tickets and its macro-AUPRC is within `max_auprc_drop`.
Any two classifiers that share the severity scale plug in (the Classifier protocol); outputs follow the full
model's card, and the card records the bands and the expected share of tickets that take the full path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from triage.models.base import Classifier, ModelCard, Prediction
from triage.taxonomy import Policy

log = logging.getLogger(__name__)
FAST, FULL = "fast", "full"
ALPHAS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
MARGINS = (0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0)


@dataclass(frozen=True)
class Bands:
    """Where the cheap model is unsure: per full-model category [low, high]; and the severity guard."""

    low: dict[str, float]
    high: dict[str, float]
    severity_guard: float
    alpha: float
    margin: float = 0.0
    # Per category, the probabilities where the decision turns (threshold, min-confidence edges).
    turns: dict[str, list[float]] | None = None
    # When fitted per category: each category's quantile (and the severity guard's, under "severity").
    alphas: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the model card)."""
        return asdict(self)


def guarded_severities(policy: Policy) -> list[str]:
    """Severity levels the fast path must never decide alone: the always-review ones, else the top two."""
    marked = [s.name for s in policy.severity if s.always_review]
    return marked or list(policy.severity_names[-2:])


class CascadeClassifier:
    """Cheap model for the sure tickets, full model for the rest; `predict` says which path scored each row."""

    def __init__(self, fast: Classifier, full: Classifier, bands: Bands, guarded: Sequence[str],
                 always_review: Sequence[str], card: ModelCard | None = None) -> None:
        if list(fast.card.severity_levels) != list(full.card.severity_levels):
            raise ValueError(f"the two models differ in severity levels: {fast.card.severity_levels} vs "
                             f"{full.card.severity_levels}")
        self.fast, self.full, self.bands = fast, full, bands
        self.guarded, self.always_review = list(guarded), list(always_review)
        names = list(full.card.categories)
        fast_index = {c: j for j, c in enumerate(fast.card.categories)}
        # A category the cheap model does not score is never sure: its band covers everything.
        self._cols = np.array([fast_index.get(c, -1) for c in names])
        self._low = np.array([bands.low.get(c, -np.inf) if fast_index.get(c) is not None else -np.inf
                              for c in names])
        self._high = np.array([np.inf if c in self.always_review else bands.high.get(c, np.inf) for c in names])
        self._turns = [np.array((bands.turns or {}).get(c, [])) for c in names]
        self.guard_cols = [list(full.card.severity_levels).index(s) for s in self.guarded]
        self.card = card or replace(full.card, kind="cascade", extra={**full.card.extra})

    def with_bands(self, bands: Bands) -> CascadeClassifier:
        """The same two models and rules with other bands (and this card)."""
        return CascadeClassifier(self.fast, self.full, bands, self.guarded, self.always_review, self.card)

    def fast_scores(self, prediction: Prediction) -> np.ndarray:
        """The cheap model's category probabilities in the full model's category order (NaN where it has none)."""
        out = np.full((prediction.categories.shape[0], len(self._cols)), np.nan)
        have = self._cols >= 0
        out[:, have] = prediction.categories[:, self._cols[have]]
        return out

    def needs_full(self, prediction: Prediction) -> np.ndarray:
        """Boolean (n,): the tickets the cheap model is unsure of, or that may be always-review."""
        unsure, severe = self.unsure_parts(prediction)
        return np.asarray(unsure.any(axis=1) | severe)

    def unsure_parts(self, prediction: Prediction) -> tuple[np.ndarray, np.ndarray]:
        """(n, C) where the cheap model is unsure of a category (in the full model's order), and (n,) where it
        thinks the ticket may be of an always-review severity (or its top two levels are too close)."""
        p = self.fast_scores(prediction)
        unsure = np.isnan(p) | ((p >= self._low) & (p <= self._high))
        margin = self.bands.margin
        if margin > 0:
            for j, turns in enumerate(self._turns):
                if len(turns):
                    unsure[:, j] |= (np.abs(p[:, j, None] - turns[None, :]) < margin).any(axis=1)
        sev = prediction.severity
        severe = sev[:, self.guard_cols].sum(axis=1) >= self.bands.severity_guard
        if margin > 0 and sev.shape[1] > 1:
            top2 = np.sort(sev, axis=1)[:, -2:]
            severe |= top2[:, 1] - top2[:, 0] < margin
        return unsure, np.asarray(severe)

    def combine(self, fast: Prediction, full: Prediction, mask: np.ndarray) -> Prediction:
        """Fast rows from the cheap model (re-ordered like the full model), full rows from the full model."""
        cats = self.fast_scores(fast)
        sev = np.array(fast.severity, dtype=np.float64, copy=True)
        cats[mask], sev[mask] = full.categories, full.severity
        paths = np.where(mask, FULL, FAST)
        return Prediction(categories=cats, severity=sev, paths=paths)

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Probabilities in the full model's order, and `paths` ('fast' or 'full') per text."""
        fast = self.fast.predict(texts)
        mask = self.needs_full(fast)
        chosen = [t for t, m in zip(texts, mask, strict=True) if m]
        full = self.full.predict(chosen) if chosen else Prediction(
            np.zeros((0, len(self._cols))), np.zeros((0, fast.severity.shape[1])))
        return self.combine(fast, full, mask)

    def save(self, directory: Path) -> None:
        """Both models in fast/ and full/, and the cascade's card (bands in extra['cascade'])."""
        directory.mkdir(parents=True, exist_ok=True)
        self.fast.save(directory / FAST)
        self.full.save(directory / FULL)
        self.card.write(directory)

    @classmethod
    def load(cls, directory: Path, fast: Classifier, full: Classifier) -> CascadeClassifier:
        """Rebuild a saved cascade around its two loaded models."""
        card = ModelCard.read(directory)
        spec = card.extra["cascade"]
        return cls(fast, full, Bands(**spec["bands"]), spec["guarded_severities"], spec["always_review"], card)


def macro_auprc(labels: np.ndarray, proba: np.ndarray) -> float:
    """Mean average precision over the categories with at least one known positive (NaN labels ignored)."""
    from sklearn.metrics import average_precision_score

    scores = []
    for j in range(labels.shape[1]):
        known = ~np.isnan(labels[:, j])
        y = labels[known, j]
        if y.sum() > 0 and (y == 0).any():
            scores.append(float(average_precision_score(y, proba[known, j])))
    return float(np.mean(scores)) if scores else float("nan")


def decision_turns(card: ModelCard, policy: Policy) -> dict[str, list[float]]:
    """Per category the probabilities where routing changes its answer: the decision threshold, and either the
    card's auto-clear and precision operating points (routing with both promises) or the min-confidence edges."""
    from triage.conformal import clear_points_from_card, points_from_card

    known = set(policy.category_names)
    clear, points = clear_points_from_card(card.extra), points_from_card(card.extra)
    out = {}
    for name in card.categories:
        if name in known:
            turns = {card.thresholds.get(name, policy.category(name).threshold)}
            if clear:
                if name in clear:
                    turns.add(clear[name].threshold)
                if (point := points.get(name)) is not None and point.threshold is not None:
                    turns.add(point.threshold)
            else:
                m = policy.category(name).min_confidence
                turns |= {m, 1.0 - m}
            out[name] = sorted(t for t in turns if 0.0 <= t <= 1.0)
    return out


def fit_bands(fast: Prediction, full: Prediction, full_card: ModelCard, cascade_of: Any, alpha: float,
              guarded_cols: Sequence[int], turns: dict[str, list[float]] | None = None) -> Bands:
    """Bands for one alpha from validation predictions: quantiles of the cheap model's scores.

    Below `low` the cheap model is under all but `alpha` of the tickets the full model does not leave at its
    lowest turn (auto-clear); above `high` over all but `alpha` of those it does not put past its highest turn
    (asserted). Without turns both sides are the decision threshold.
    """
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    p = cascade_of.fast_scores(fast)
    for j, name in enumerate(full_card.categories):
        if np.isnan(p[:, j]).all():
            continue
        threshold = full_card.thresholds.get(name, 0.5)
        edges = (turns or {}).get(name) or [threshold]
        pos, neg = p[full.categories[:, j] >= min(edges), j], p[full.categories[:, j] < max(edges), j]
        low[name] = float(np.quantile(pos, alpha)) if len(pos) else 1.0
        high[name] = float(np.quantile(neg, 1 - alpha)) if len(neg) else 0.0
    severe_full = np.isin(full.severity.argmax(axis=1), guarded_cols)
    severe_fast = fast.severity[:, guarded_cols].sum(axis=1)
    guard = float(np.quantile(severe_fast[severe_full], alpha)) if severe_full.any() else 0.5
    return Bands(low, high, min(guard, 0.5), alpha)


@dataclass(frozen=True)
class CascadeFit:
    """What fitting chose and how it did on validation."""

    classifier: CascadeClassifier
    alpha: float
    full_share: float
    agreement: float
    auprc_full: float
    auprc_cascade: float
    tried: list[dict[str, float]]


def decisions(scorer: Any, prediction: Prediction) -> list[tuple[str, str, str]]:
    """(route, category, severity) per row of `prediction` as `scorer` (a Scorer) decides them."""
    return [(d.route, d.category, d.severity) for d in (scorer.decide(s) for s in scorer.to_scores(prediction))]


class _Validation:
    """Validation predictions of both models, and how any full-path mask does on them, without re-deciding.

    A row's decision depends on that row's scores alone: on the full path it is the full model's decision, on the
    fast path the cheap model's (computed once for every row). So agreement of a mask is one vector operation.
    """

    def __init__(self, probe: CascadeClassifier, fast: Prediction, full: Prediction, labels: np.ndarray,
                 policy: Policy, target_agreement: float, max_auprc: float) -> None:
        from triage.scorer import Scorer

        reference = Scorer(probe.full, policy)
        self.probe, self.fast, self.full, self.labels = probe, fast, full, labels
        self.want = decisions(reference, full)
        self.p = probe.fast_scores(fast)
        as_full = Prediction(np.nan_to_num(self.p), np.asarray(fast.severity, dtype=np.float64))
        self.fast_agrees = np.array([a == b for a, b in zip(decisions(reference, as_full), self.want, strict=True)])
        self.auprc_full = macro_auprc(labels, full.categories)
        self.target_agreement, self.max_auprc = target_agreement, max_auprc

    def agreement(self, mask: np.ndarray) -> float:
        return float(np.mean(mask | self.fast_agrees))

    def auprc(self, mask: np.ndarray) -> float:
        return macro_auprc(self.labels, np.where(mask[:, None], self.full.categories, np.nan_to_num(self.p)))

    def meets(self, mask: np.ndarray) -> tuple[bool, float, float]:
        """(both targets met, agreement, macro-AUPRC); AUPRC is computed only when agreement is met."""
        agreement = self.agreement(mask)
        if agreement < self.target_agreement:
            return False, agreement, float("nan")
        auprc = self.auprc(mask)
        return self.auprc_full - auprc <= self.max_auprc, agreement, auprc


def _per_category(v: _Validation, levels: list[Bands], start: int, margin: float,
                  tried: list[dict[str, float]]) -> tuple[Bands, np.ndarray, float, float] | None:
    """From every category at `levels[start]`, greedily loosen one category (or the severity guard) at a time to any
    looser level: the move that takes the most tickets off the full path per decision lost, while both targets
    hold. Returns (bands, mask, agreement, auprc) when it found anything better than the start."""
    names = list(v.probe.full.card.categories)
    parts = []
    for bands in levels:
        unsure, severe = v.probe.with_bands(bands).unsure_parts(v.fast)
        parts.append((unsure, severe))
    n_cols = len(names) + 1  # the categories, then the severity guard
    chosen = [start] * n_cols
    blocked: set[tuple[int, int]] = set()

    def mask_of(levels_: list[int]) -> np.ndarray:
        cols = np.column_stack([parts[lv][0][:, j] for j, lv in enumerate(levels_[:-1])])
        return np.asarray(cols.any(axis=1) | parts[levels_[-1]][1])

    mask = mask_of(chosen)
    ok, agreement, auprc = v.meets(mask)
    if not ok:
        return None
    improved = False
    while True:
        best: tuple[float, int, int, np.ndarray] | None = None
        for col in range(n_cols):
            for lv in range(chosen[col] + 1, len(levels)):
                if (col, lv) in blocked:
                    continue
                trial = [*chosen]
                trial[col] = lv
                m = mask_of(trial)
                gain = float(mask.mean() - m.mean())
                if gain <= 0:
                    continue
                lost = agreement - v.agreement(m)
                if agreement - lost < v.target_agreement:
                    continue
                ratio = gain / max(lost, 1e-9)
                if best is None or ratio > best[0]:
                    best = (ratio, col, lv, m)
        if best is None:
            break
        _, col, lv, m = best
        ok, a, u = v.meets(m)
        tried.append({"alpha": levels[lv].alpha, "margin": margin, "full_share": float(m.mean()), "agreement": a,
                      "auprc": u, "per_category": 1.0})
        if not ok:
            blocked.add((col, lv))
            continue
        chosen[col], mask, agreement, auprc, improved = lv, m, a, u, True
    if not improved:
        return None
    low = {c: levels[chosen[j]].low[c] for j, c in enumerate(names) if c in levels[chosen[j]].low}
    high = {c: levels[chosen[j]].high[c] for j, c in enumerate(names) if c in levels[chosen[j]].high}
    alphas = {c: levels[chosen[j]].alpha for j, c in enumerate(names)}
    alphas["severity"] = levels[chosen[-1]].alpha
    bands = replace(levels[start], low=low, high=high, severity_guard=levels[chosen[-1]].severity_guard,
                    alphas=alphas)
    return bands, mask, agreement, auprc


def fit_cascade(fast: Classifier, full: Classifier, texts: Sequence[str], labels: np.ndarray, policy: Policy,
                min_agreement: float = 0.98, max_auprc_drop: float = 0.005, spare: float = 0.0) -> CascadeFit:
    """Choose the bands on validation `texts` (labels (n, C) in the full model's category order, NaN unknown).

    `spare` is held back from both targets on validation (agreement >= min_agreement + spare, AUPRC drop <=
    max_auprc_drop - spare / 2) so that the promise still holds on tickets the bands were not fitted on.
    """
    return fit_cascade_on(fast, full, fast.predict(texts), full.predict(texts), labels, policy, min_agreement,
                          max_auprc_drop, spare)


def fit_cascade_on(fast: Classifier, full: Classifier, pf: Prediction, pF: Prediction, labels: np.ndarray,
                   policy: Policy, min_agreement: float = 0.98, max_auprc_drop: float = 0.005,
                   spare: float = 0.0) -> CascadeFit:
    """`fit_cascade` from both models' validation predictions.

    First one quantile `alpha` and one `margin` for every category (the fewest full-model calls meeting both
    targets); then, from the best of each margin, per-category bands: each category's (and the severity guard's)
    quantile loosened on its own while the targets hold.
    """
    guarded = guarded_severities(policy)
    always = [c.name for c in policy.categories if c.always_review]
    probe = CascadeClassifier(fast, full, Bands({}, {}, 0.5, 0.0), guarded, always)
    v = _Validation(probe, pf, pF, labels, policy, min(min_agreement + spare, 1.0 + 1e-9),
                    max(max_auprc_drop - spare / 2, 0.0))
    turns = decision_turns(full.card, policy)
    best: tuple[float, Bands, float, float, float] | None = None
    tried: list[dict[str, float]] = []
    for margin in MARGINS:
        levels = [replace(fit_bands(pf, pF, full.card, probe, alpha, probe.guard_cols, turns), margin=margin,
                          turns=turns) for alpha in ALPHAS]
        best_level: int | None = None
        for k, bands in enumerate(levels):
            mask = probe.with_bands(bands).needs_full(pf)
            ok, agreement, auprc = v.meets(mask)
            tried.append({"alpha": bands.alpha, "margin": margin, "full_share": float(mask.mean()),
                          "agreement": agreement, "auprc": auprc})
            if ok:
                best_level = k
                if best is None or mask.mean() < best[0]:
                    best = (float(mask.mean()), bands, agreement, auprc, bands.alpha)
        if best_level is not None:
            refined = _per_category(v, levels, best_level, margin, tried)
            if refined is not None and (best is None or refined[1].mean() < best[0]):
                bands, mask, agreement, auprc = refined
                best = (float(mask.mean()), bands, agreement, auprc, bands.alpha)
    auprc_full = v.auprc_full
    if best is None:  # alpha 0 can still miss (ties): then every ticket takes the full path
        bands = Bands({c: -1.0 for c in full.card.categories}, {c: 2.0 for c in full.card.categories}, 0.0, 0.0)
        best = (1.0, bands, 1.0, auprc_full, 0.0)
    share, bands, agreement, auprc, alpha = best
    extra = {**full.card.extra, "cascade": {
        "bands": bands.to_dict(), "guarded_severities": guarded, "always_review": always,
        "expected_full_share": round(share, 4), "validation_agreement": round(agreement, 4),
        "validation_macro_auprc_full": round(auprc_full, 4), "validation_macro_auprc_cascade": round(auprc, 4),
        "min_agreement": min_agreement, "max_auprc_drop": max_auprc_drop, "spare": spare,
        "validation_tickets": len(labels), "fast_kind": fast.card.kind, "full_kind": full.card.kind}}
    card = replace(full.card, kind="cascade", extra=extra)
    log.info("cascade: sends %.1f%% of validation tickets to the full model; agreement %.3f, "
             "macro-AUPRC %.4f vs %.4f", 100 * share, agreement, auprc, auprc_full)
    return CascadeFit(CascadeClassifier(fast, full, bands, guarded, always, card), alpha, share, agreement,
                      auprc_full, auprc, tried)
