"""The baseline's request path as a few array operations: TF-IDF features and every linear head in one product.

scikit-learn spends most of a single-ticket call on per-call machinery, not arithmetic: `FeatureUnion.transform`
dispatches through joblib, and each of the ~15 `decision_function` calls validates its input again. Here the
fitted vectorisers' analysers, vocabularies and idf weights, and every head's `coef_`/`intercept_`, are taken
once at load into plain arrays, so a batch is: analyse texts -> one CSR matrix -> one sparse-dense product
(n, F) @ (F, H) -> calibration. The numbers equal scikit-learn's path to about 1e-7 (tests/unit/models).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from triage.calibration import SigmoidCalibration, ordinal_probabilities

# Logit of a severity cut-point no training row ever passed (P(y > k) ~ 0); the baseline uses the same value.
NEVER = -30.0


# Words whose character n-gram columns are remembered per process (char_wb n-grams never cross a word, and
# words repeat across tickets); about 500 bytes each, 25 MB at the cap (measured). Cleared when full.
WORD_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class _Block:
    """One fitted TF-IDF vectoriser: its analyser, vocabulary (term -> column), idf and column offset; for a
    `char_wb` vectoriser also its preprocessor and per-word n-grams, so a text's columns are its words' columns."""

    analyse: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray | None
    sublinear: bool
    norm: str | None
    offset: int
    preprocess: Callable[[str], str] | None = None
    word_ngrams: Callable[[str], list[str]] | None = None
    cache: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def columns(self, text: str) -> list[int]:
        """Block columns of the text's known n-grams, once per occurrence (a count is a repeat)."""
        if self.preprocess is None:
            return [c for c in map(self.vocabulary.get, self.analyse(text)) if c is not None]
        out: list[int] = []
        extend, cache = out.extend, self.cache
        for word in self.preprocess(text).split():
            cols = cache.get(word)
            extend(self._word(word) if cols is None else cols)
        return out

    def _word(self, word: str) -> tuple[int, ...]:
        assert self.word_ngrams is not None
        cols = tuple(c for c in map(self.vocabulary.get, self.word_ngrams(word)) if c is not None)
        if len(self.cache) >= WORD_CACHE_SIZE:
            self.cache.clear()
        self.cache[word] = cols
        return cols


def _blocks(features: Any) -> tuple[list[_Block], int]:
    """The vectorisers of a fitted FeatureUnion (or a single TfidfVectorizer), with their column offsets."""
    vectorisers = [v for _, v in features.transformer_list] if hasattr(features, "transformer_list") else [features]
    blocks, offset = [], 0
    for v in vectorisers:
        idf = getattr(v, "idf_", None) if getattr(v, "use_idf", False) else None
        # Plain ints: numpy integer values would make every lookup of a request box and unbox a scalar.
        vocabulary = {term: int(col) for term, col in v.vocabulary_.items()}
        by_word = getattr(v, "analyzer", None) == "char_wb" and getattr(v, "input", None) == "content"
        blocks.append(_Block(v.build_analyzer(), vocabulary, None if idf is None else np.asarray(idf),
                             bool(getattr(v, "sublinear_tf", False)), getattr(v, "norm", None), offset,
                             # scikit-learn's own steps: lower-casing/accents, then the n-grams of one word
                             preprocess=v.build_preprocessor() if by_word else None,
                             word_ngrams=v._char_wb_ngrams if by_word else None))
        offset += len(v.vocabulary_)
    return blocks, offset


class FastLinearHeads:
    """TF-IDF features and all linear heads of a fitted baseline, as arrays; `logits` is the whole request path.

    Heads are the category models (C columns) followed by the severity cut-points (L-1 columns, NEVER for a
    cut-point without a model).
    """

    def __init__(self, features: Any, category_models: Sequence[Any], severity_models: Sequence[Any | None],
                 calibrations: Sequence[SigmoidCalibration], severity_temperature: float) -> None:
        self._blocks, self.n_features = _blocks(features)
        self._starts = np.array([b.offset for b in self._blocks], dtype=np.int64)
        self._sublinear = np.array([b.sublinear for b in self._blocks])
        self._norm = np.array([b.norm or "" for b in self._blocks])
        self._idf = np.concatenate([np.ones(len(b.vocabulary), dtype=np.float32) if b.idf is None
                                    else np.asarray(b.idf, dtype=np.float32) for b in self._blocks])
        heads: list[Any | None] = [*category_models, *severity_models]
        weights = np.zeros((self.n_features, len(heads)), dtype=np.float64)
        bias = np.full(len(heads), NEVER, dtype=np.float64)
        for j, model in enumerate(heads):
            if model is not None:
                weights[:, j] = np.asarray(model.coef_, dtype=np.float64).ravel()
                bias[j] = float(np.asarray(model.intercept_).ravel()[0])
        self.weights, self.bias = weights, bias
        self.n_categories = len(category_models)
        self._temperature = np.array([c.temperature for c in calibrations], dtype=np.float64)
        self._shift = np.array([c.bias for c in calibrations], dtype=np.float64)
        self.severity_temperature = severity_temperature

    def _entries(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Non-zero TF-IDF entries (row, column, value) of a batch, sorted by row then column.

        Each text's known n-gram columns (with repeats) are gathered in Python; counting, sublinear tf, idf and
        the per-block norm then run once for the whole batch as array operations."""
        n = len(texts)
        parts = [block.columns(text) for text in texts for block in self._blocks]
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        total = int(sizes.sum())
        if not total:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        local = np.fromiter(chain.from_iterable(parts), dtype=np.int64, count=total)
        part = np.repeat(np.arange(len(parts)), sizes)  # text-major, block-minor
        rows, block_of_part = np.divmod(part, len(self._blocks))
        keys, counts = np.unique(rows * self.n_features + local + self._starts[block_of_part], return_counts=True)
        rows, cols = np.divmod(keys, self.n_features)
        tf = counts.astype(np.float32)
        block = np.searchsorted(self._starts, cols, side="right") - 1
        if self._sublinear.any():
            log = self._sublinear[block]
            tf[log] = np.log(tf[log]) + np.float32(1.0)
        tf = tf * self._idf[cols]
        group = rows * len(self._blocks) + block
        for kind, power in (("l2", 2), ("l1", 1)):
            use = self._norm == kind
            if use.any():
                mass = np.bincount(group, weights=np.abs(tf) ** power, minlength=n * len(self._blocks))
                scale = (np.sqrt(mass) if power == 2 else mass).astype(np.float32)
                pick = use[block]
                tf[pick] = tf[pick] / scale[group[pick]]
        return rows, cols, tf

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF matrix (n, F), float32, blocks side by side: the one place a text becomes features."""
        rows, cols, tf = self._entries(texts)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        return sp.csr_matrix((tf, cols, indptr), shape=(len(texts), self.n_features))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw decision values (n, H) of every head: the features' product with the stacked weights, taken as
        each row's sum of weight rows (a few hundred per text), without building a sparse matrix."""
        rows, cols, tf = self._entries(texts)
        z = np.tile(self.bias, (len(texts), 1))
        if len(rows):
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            z[rows[starts]] += np.add.reduceat(self.weights[cols] * tf[:, None], starts, axis=0)
        return z

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated category probabilities (n, C) and severity level probabilities (n, L)."""
        z = self.logits(texts)
        c = self.n_categories
        cats = expit(z[:, :c] / self._temperature + self._shift)
        sev = ordinal_probabilities(z[:, c:], self.severity_temperature)
        return np.asarray(cats), sev
