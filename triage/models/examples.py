"""Categories without a trained head: scored from the policy's seed examples, then from a light head.

A category the policy adds with `examples:` has no training data. `with_example_heads` extends any classifier
(baseline, transformer, ...) with one extra probability column per such category, computed on the frozen sentence
encoder's embeddings (triage/encoder.py):

- an **examples head** (prototype / nearest-neighbour): similarity = mean cosine to the 3 nearest seed examples,
  pushed down when a counter-example is nearer than any example; mapped to a probability conservatively
  (capped at `EXAMPLES_CAP`, midpoint between how similar unrelated texts are and how similar seeds are to each
  other). Its tickets are always reviewed: a score from examples alone never auto-routes.
- a **light head**, once experts have labelled enough tickets (`triage retrain --heads-only`): a logistic regression
  on the same embeddings, saved with the base classifier as kind "heads". Reviewed until its cross-validated
  precision meets the category's target precision.

The card of the extended classifier lists these categories with their thresholds, and `card.extra["example_heads"]`
says what each one runs on (`examples` or `light_head`) and whether its positives must be reviewed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np

from triage.models.base import Classifier, ModelCard, Prediction
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

HEADS_KIND = "heads"
BASE_DIR = "base"
HEADS_FILE = "heads.joblib"
EXTRA_KEY = "example_heads"
EXAMPLES_CAP = 0.9  # a score from seed examples never claims more than 90%
NEAREST = 3


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into unit-length embeddings (n, d)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, one row each."""
        ...


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0))))


def seed_similarity(x: np.ndarray, positives: np.ndarray, negatives: np.ndarray | None = None,
                    nearest: int = NEAREST) -> np.ndarray:
    """(n,) similarity of rows x (n, d) to a category's seeds: mean cosine to the `nearest` closest examples,
    minus how much nearer the closest counter-example is than the closest example (when it is)."""
    sims = np.asarray(x, dtype=np.float32) @ np.asarray(positives, dtype=np.float32).T
    k = min(nearest, sims.shape[1])
    top = -np.sort(-sims, axis=1)[:, :k]
    score = top.mean(axis=1)
    if negatives is not None and len(negatives):
        neg = (np.asarray(x, dtype=np.float32) @ np.asarray(negatives, dtype=np.float32).T).max(axis=1)
        score = score - np.maximum(neg - top[:, 0], 0.0)
    return np.asarray(score, dtype=np.float64)


@dataclass(frozen=True)
class ExamplesHead:
    """Prototype head on seed embeddings; p = cap * sigmoid((similarity - midpoint) / scale)."""

    name: str
    positives: np.ndarray  # (k, d) seed examples
    negatives: np.ndarray  # (m, d) counter-examples, m may be 0
    midpoint: float
    scale: float
    cap: float = EXAMPLES_CAP

    kind = "examples"

    @property
    def threshold(self) -> float:
        """Probability at the midpoint: a text as similar to the seeds as the calibration's dividing line."""
        return self.cap / 2.0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n,) conservative probabilities for embeddings x (n, d)."""
        s = seed_similarity(x, self.positives, self.negatives)
        return np.asarray(self.cap * _sigmoid((s - self.midpoint) / self.scale))

    def describe(self) -> dict[str, Any]:
        """What /v1/model and the card say about this head."""
        return {"runs_on": "examples", "examples": len(self.positives), "counter_examples": len(self.negatives),
                "always_review": True}


def fit_examples_head(name: str, positives: np.ndarray, negatives: np.ndarray, background: np.ndarray,
                      cap: float = EXAMPLES_CAP) -> ExamplesHead:
    """Calibrate a prototype head from the seeds alone.

    Positive side: each seed's similarity to the *other* seeds (leave one out). Negative side: the similarity of
    unrelated background texts (n_bg, d). The midpoint sits halfway between the background's 95th percentile and
    the seeds' median, so an ordinary unrelated text lands well below the threshold.
    """
    pos = np.asarray(positives, dtype=np.float32)
    loo = np.array([seed_similarity(pos[i:i + 1], np.delete(pos, i, axis=0), negatives)[0] for i in range(len(pos))])
    bg = seed_similarity(background, pos, negatives) if len(background) else np.array([0.2])
    hi, lo = float(np.median(loo)), float(np.quantile(bg, 0.95))
    if hi <= lo:  # seeds no closer to each other than to unrelated text: demand near-copies of a seed
        log.warning("category %s: its seed examples are no more alike than unrelated texts (%.2f vs %.2f); "
                    "only near-copies of a seed will score high", name, hi, lo)
        hi = max(lo + 0.1, float(np.max(loo)))
    midpoint = (hi + lo) / 2.0
    scale = max((hi - lo) / 2.0, 0.04)
    return ExamplesHead(name, pos, np.asarray(negatives, dtype=np.float32).reshape(-1, pos.shape[1]), midpoint,
                        scale, cap)


@dataclass(frozen=True)
class LightHead:
    """Logistic regression on frozen embeddings, fitted from seed examples and expert labels."""

    name: str
    coef: np.ndarray  # (d,)
    intercept: float
    threshold: float
    n_labels: int
    n_positives: int
    precision: float | None  # cross-validated at `threshold`; None when too few positives to estimate
    target_precision: float

    kind = "light_head"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n,) probabilities for embeddings x (n, d)."""
        return _sigmoid(np.asarray(x, dtype=np.float64) @ self.coef + self.intercept)

    @property
    def meets_target(self) -> bool:
        """Whether its estimated precision reaches the category's target (then it may auto-route)."""
        return self.precision is not None and self.precision >= self.target_precision

    def describe(self) -> dict[str, Any]:
        """What /v1/model and the card say about this head."""
        return {"runs_on": "light_head", "labels": self.n_labels, "positives": self.n_positives,
                "precision": self.precision, "always_review": not self.meets_target}


Head = ExamplesHead | LightHead


BACKGROUND_WEIGHT = 0.1  # an unrelated background text weighs a tenth of an expert label in a light head


def fit_light_head(name: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
                   target_precision: float = 0.9, c: float = 1.0, folds: int = 5,
                   seed: int = 0, background: np.ndarray | None = None,
                   background_weight: float = BACKGROUND_WEIGHT) -> LightHead:
    """Fit a balanced logistic regression on embeddings x (n, d) with 0/1 labels y (n,); threshold 0.5.

    `background` (m, d): unrelated texts (the ones that calibrate examples heads) added as negatives weighing
    `background_weight` each. Expert labels on a new category are mostly its look-alikes (the example-guided queue
    sends those first), so without them the head never sees an ordinary ticket and calls too many of them positive
    (benchmarks/new_category.py: spam F1 after 50 guided labels 0.79 without, 0.87 with).
    Precision at the threshold is estimated by stratified cross-validation, on the labelled rows only, when each
    class has `folds` of them.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y, dtype=np.int64)
    n, n_pos = len(y), int(y.sum())
    if n_pos == 0 or n_pos == n:
        raise ValueError(f"category {name}: a head needs positive and negative labels, got {n_pos} of {n}")
    if not 0.0 <= background_weight <= 1.0:
        raise ValueError(f"background_weight must be in [0, 1], got {background_weight}")
    x_fit, y_fit, w_fit = np.asarray(x, dtype=np.float64), y, weights
    if background is not None and len(background) and background_weight > 0.0:
        bg = np.asarray(background, dtype=np.float64).reshape(-1, x_fit.shape[1])
        x_fit = np.concatenate([x_fit, bg])
        y_fit = np.concatenate([y, np.zeros(len(bg), dtype=np.int64)])
        w_fit = np.concatenate([np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64),
                                np.full(len(bg), background_weight)])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit(x_fit, y_fit, sample_weight=w_fit)
    precision: float | None = None
    if folds >= 2 and min(n_pos, n - n_pos) >= folds:  # folds=0: no estimate (benchmarks)
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        params = {"sample_weight": w_fit} if w_fit is not None else None
        predicted = cross_val_predict(LogisticRegression(C=c, class_weight="balanced", max_iter=2000), x_fit, y_fit,
                                      cv=cv, params=params)[:n]
        precision = float(y[predicted == 1].mean()) if (predicted == 1).any() else 0.0
    return LightHead(name, model.coef_[0].astype(np.float64), float(model.intercept_[0]), 0.5, n, n_pos,
                     precision, target_precision)


def background_texts() -> list[str]:
    """Unrelated texts for calibrating examples heads: the example tickets shipped with the package."""
    import json

    from triage.data.sources import example_tickets_path

    texts = []
    for line in example_tickets_path().read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(str(json.loads(line)["text"]))
    return texts


def examples_heads(policy: Policy, missing: Sequence[str], encoder: TextEncoder,
                   background: Sequence[str] | None = None) -> list[ExamplesHead]:
    """An examples head for each category in `missing` that lists seed examples (embedded here, once)."""
    cats = [policy.category(n) for n in missing if policy.category(n).examples]
    if not cats:
        return []
    seeds = {text for c in cats for text in (*c.examples, *c.counter_examples)}
    bg = [t for t in (background if background is not None else background_texts()) if t not in seeds]
    texts = [t for c in cats for t in (*c.examples, *c.counter_examples)]
    emb = encoder.encode([*texts, *bg])
    bg_emb = emb[len(texts):]
    heads, at = [], 0
    for c in cats:
        pos = emb[at:at + len(c.examples)]
        at += len(c.examples)
        neg = emb[at:at + len(c.counter_examples)]
        at += len(c.counter_examples)
        heads.append(fit_examples_head(c.name, pos, neg, bg_emb))
    return heads


class HeadsClassifier:
    """A classifier extended with heads on frozen encoder embeddings, one extra category column each."""

    def __init__(self, base: Classifier, heads: Sequence[Head], encoder: TextEncoder | Callable[[], TextEncoder],
                 card: ModelCard | None = None) -> None:
        self.base = base
        self.heads = list(heads)
        self._encoder = encoder
        self.card = card or extended_card(base.card, self.heads)

    @property
    def encoder(self) -> TextEncoder:
        """The encoder (loaded on first use when a factory was given)."""
        self._encoder = _resolve(self._encoder)
        return self._encoder

    def predict(self, texts: Sequence[str]) -> Prediction:
        """The base model's columns, then one column per head (card.categories order)."""
        base = self.base.predict(texts)
        if not self.heads:
            return base
        x = self.encoder.encode(texts)
        extra = np.column_stack([h.predict_proba(x) for h in self.heads])
        return Prediction(categories=np.column_stack([np.asarray(base.categories), extra]), severity=base.severity,
                          paths=base.paths)  # a cascade base still says which of its models scored each row

    def save(self, directory: Path) -> None:
        """Base classifier in `base/`, light heads in heads.joblib; examples heads are rebuilt from the policy."""
        directory.mkdir(parents=True, exist_ok=True)
        self.base.save(directory / BASE_DIR)
        light = [h for h in self.heads if isinstance(h, LightHead)]
        joblib.dump(light, directory / HEADS_FILE)
        card = copy.deepcopy(self.card)
        card.kind = HEADS_KIND
        card.categories = [*self.base.card.categories, *(h.name for h in light)]
        card.extra[EXTRA_KEY] = {h.name: h.describe() for h in light}
        card.extra["base_kind"] = self.base.card.kind
        card.write(directory)

    @classmethod
    def load(cls, directory: Path, threads: int = 1) -> HeadsClassifier:
        """Restore a classifier written by `save` (the encoder is loaded on first prediction)."""
        from triage.encoder import get_encoder
        from triage.models.io import load_classifier

        base = load_classifier(directory / BASE_DIR, threads=threads)
        heads: list[Head] = list(joblib.load(directory / HEADS_FILE))
        return cls(base, heads, get_encoder, ModelCard.read(directory))


def _resolve(encoder: TextEncoder | Callable[[], TextEncoder]) -> TextEncoder:
    return encoder if isinstance(encoder, TextEncoder) else encoder()


def extended_card(base: ModelCard, heads: Sequence[Head]) -> ModelCard:
    """The base card plus the heads' categories, thresholds and what they run on."""
    card = copy.deepcopy(base)
    card.categories = [*base.categories, *(h.name for h in heads)]
    card.thresholds = {**base.thresholds, **{h.name: h.threshold for h in heads}}
    card.extra = {**base.extra, EXTRA_KEY: {**base.extra.get(EXTRA_KEY, {}), **{h.name: h.describe() for h in heads}}}
    return card


def with_example_heads(classifier: Classifier, policy: Policy,
                       encoder: TextEncoder | Callable[[], TextEncoder] | None = None) -> Classifier:
    """`classifier` plus an examples head for each seeded policy category its card lacks (itself when none)."""
    missing = [n for n in policy.seeded_categories if n not in classifier.card.categories]
    if not missing:
        return classifier
    if encoder is None:
        from triage.encoder import get_encoder

        encoder = get_encoder
    enc = _resolve(encoder)
    heads = examples_heads(policy, missing, enc)
    log.info("categories scored from seed examples only: %s", ", ".join(h.name for h in heads))
    if isinstance(classifier, HeadsClassifier):
        return HeadsClassifier(classifier.base, [*classifier.heads, *heads], enc,
                               extended_card(classifier.card, heads))
    return HeadsClassifier(classifier, heads, enc)


def head_status(card: ModelCard) -> dict[str, dict[str, Any]]:
    """What each category without a fully trained head runs on, from a card (empty for a plain classifier)."""
    status = card.extra.get(EXTRA_KEY, {})
    return dict(status) if isinstance(status, dict) else {}
