"""The combined model: character/word n-grams and a second, semantic view, stacked per head.

The two views fail differently: n-grams catch obfuscated slurs, spelling variants and non-English text; a
transformer catches paraphrase ("I know where you live" has no threatening word). The second view is either the
fine-tuned transformer (`TransformerView`, the default since it measured best) or linear heads on a frozen sentence
encoder's embedding (`EncoderView`, cheaper to fit). Each view gives one logit per category and per severity
cut-point P(severity > k); a per-head stacker z = a * z_ngrams + b * z_view + c, fitted on validation, turns the two
logits into one calibrated probability. Texts are normalised (triage.text) and long ones scored window by window,
keeping the most severe window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit

from triage.models.base import ModelCard, Prediction, WindowSpec, most_severe_window
from triage.models.embedding import SentenceEncoder, save_files
from triage.models.transformer import TransformerClassifier
from triage.text import normalize_all

log = logging.getLogger(__name__)

KIND = "combined"
WEIGHTS = "combined.joblib"
TRANSFORMER_DIR = "transformer"
_EDGE = 1e-6  # probabilities are clipped this far from 0 and 1 before a logit


@dataclass
class LinearHeads:
    """K linear heads over one feature space as one matrix product: logits = x @ weights + bias, (n, K)."""

    weights: np.ndarray
    bias: np.ndarray

    def __call__(self, x: Any) -> np.ndarray:
        out = x @ self.weights
        return np.asarray(out, dtype=np.float64) + self.bias

    @classmethod
    def from_models(cls, models: Sequence[Any | None], n_features: int, never: float = -30.0) -> LinearHeads:
        """Stack fitted binary linear models (coef_ (1, F), intercept_); None = a head no row ever reached."""
        weights = np.zeros((n_features, len(models)), dtype=np.float32)
        bias = np.full(len(models), never, dtype=np.float64)
        for k, m in enumerate(models):
            if m is not None:
                weights[:, k] = np.asarray(m.coef_, dtype=np.float32).ravel()
                bias[k] = float(np.ravel(m.intercept_)[0])
        return cls(weights, bias)


@dataclass
class NgramFeatures:
    """Word and character TF-IDF vectorizers applied side by side (no FeatureUnion dispatch per call)."""

    word: Any
    char: Any

    def __call__(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([self.word.transform(texts), self.char.transform(texts)], format="csr")


@dataclass
class Stacker:
    """Per-head blend of the two views' logits: z = a * z_ngrams + b * z_encoder + c (arrays of K)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def __call__(self, z_ngrams: np.ndarray, z_encoder: np.ndarray) -> np.ndarray:
        return self.a * z_ngrams + self.b * z_encoder + self.c


@dataclass
class EncoderView:
    """Linear heads over a frozen sentence encoder's embedding."""

    encoder: SentenceEncoder
    heads: LinearHeads
    kind = "encoder"

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, K) for already normalised texts."""
        return self.heads(self.encoder.embed(texts))


@dataclass
class TransformerView:
    """The fine-tuned transformer's calibrated outputs as logits, in the combined model's head order.

    A category the transformer was not trained on gets logit 0 everywhere, which its stacker ignores (b = 0).
    """

    model: TransformerClassifier
    categories: tuple[str, ...]
    kind = "transformer"

    def __post_init__(self) -> None:
        own = {name: j for j, name in enumerate(self.model.card.categories)}
        # (combined column, transformer column) of every category both know; set once, not per request.
        self._shared = [(k, own[name]) for k, name in enumerate(self.categories) if name in own]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, K) for already normalised texts: categories, then P(severity > k) per cut-point."""
        pred = self.model.predict_prepared(texts)  # the combined model normalised them: not a second time
        cats = np.zeros((len(texts), len(self.categories)))
        for k, j in self._shared:
            cats[:, k] = logit(np.clip(pred.categories[:, j], _EDGE, 1 - _EDGE))
        above = 1.0 - np.cumsum(pred.severity, axis=1)[:, :-1]
        return np.hstack([cats, logit(np.clip(above, _EDGE, 1 - _EDGE))])


View = EncoderView | TransformerView


def cumulative_to_levels(cumulative: np.ndarray) -> np.ndarray:
    """Level probabilities (n, L) from P(severity > k) (n, L-1), forced non-increasing in k."""
    s = np.minimum.accumulate(np.clip(cumulative, 0.0, 1.0), axis=1)
    n = s.shape[0]
    upper = np.concatenate([np.ones((n, 1)), s], axis=1)
    lower = np.concatenate([s, np.zeros((n, 1))], axis=1)
    p = np.clip(upper - lower, 0.0, 1.0)
    return np.asarray(p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12))


class CombinedClassifier:
    """Stacked n-gram and second-view heads; categories first, then severity cut-points, in one matrix."""

    def __init__(self, ngrams: NgramFeatures, ngram_heads: LinearHeads, view: View, stacker: Stacker,
                 card: ModelCard) -> None:
        self.ngrams = ngrams
        self.ngram_heads = ngram_heads
        self.view = view
        self.stacker = stacker
        self.card = card
        self.windows = WindowSpec.from_card(card.extra) or WindowSpec()

    def view_logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each view's raw logits (n, K) for already normalised texts (K = categories + severity cut-points)."""
        return self.ngram_heads(self.ngrams(texts)), self.view.logits(texts)

    def probabilities(self, z_ngrams: np.ndarray, z_view: np.ndarray) -> Prediction:
        """Stacked, calibrated probabilities from the two views' logits."""
        p = expit(self.stacker(z_ngrams, z_view))
        n_cat = len(self.card.categories)
        return Prediction(categories=p[:, :n_cat], severity=cumulative_to_levels(p[:, n_cat:]))

    def _predict_normalised(self, texts: Sequence[str]) -> Prediction:
        return self.probabilities(*self.view_logits(texts))

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Category (n, C) and severity (n, L) probabilities; long texts scored by their most severe window."""
        return most_severe_window(self._predict_normalised, normalize_all(texts), self.windows)

    def save(self, directory: Path) -> None:
        """Write the vectorizers, heads, stacker, second view and card into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        raw: dict[str, Any] = {"ngrams": self.ngrams, "ngram_heads": self.ngram_heads, "stacker": self.stacker,
                               "view": self.view.kind}
        if isinstance(self.view, EncoderView):
            raw |= {"encoder_heads": self.view.heads, "encoder_max_length": self.view.encoder.max_length}
            save_files(directory, self.view.encoder)
        else:
            self.view.model.save(directory / TRANSFORMER_DIR)
        joblib.dump(raw, directory / WEIGHTS, compress=3)
        self.card.write(directory)

    @classmethod
    def load(cls, directory: str | Path, threads: int = 1) -> CombinedClassifier:
        """Restore a classifier written by `save`."""
        path = Path(directory)
        card = ModelCard.read(path)
        if card.kind != KIND:
            raise ValueError(f"{path} holds a {card.kind!r} classifier, not {KIND!r}")
        raw = joblib.load(path / WEIGHTS)
        view: View
        if raw.get("view", EncoderView.kind) == TransformerView.kind:
            view = TransformerView(TransformerClassifier.load(path / TRANSFORMER_DIR, threads=threads),
                                   tuple(card.categories))
        else:
            encoder = SentenceEncoder.load(path, max_length=int(raw["encoder_max_length"]), threads=threads)
            view = EncoderView(encoder, raw["encoder_heads"])
        return cls(raw["ngrams"], raw["ngram_heads"], view, raw["stacker"], card)
