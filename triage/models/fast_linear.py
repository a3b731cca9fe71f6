"""The baseline's request path as a few array operations: TF-IDF features and every linear head in one product.

scikit-learn spends most of a single-ticket call on per-call machinery, not arithmetic: `FeatureUnion.transform`
dispatches through joblib, and each of the ~15 `decision_function` calls validates its input again. Here the
fitted vectorisers' analysers, vocabularies and idf weights, and every head's `coef_`/`intercept_`, are taken
once at load into plain arrays, so a batch is: analyse texts -> one CSR matrix -> one sparse-dense product
(n, F) @ (F, H) -> calibration. The numbers equal scikit-learn's path to about 1e-7 (tests/unit/models).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from triage.calibration import SigmoidCalibration, ordinal_probabilities

# Logit of a severity cut-point no training row ever passed (P(y > k) ~ 0); the baseline uses the same value.
NEVER = -30.0


@dataclass(frozen=True)
class _Block:
    """One fitted TF-IDF vectoriser: its analyser, vocabulary (term -> column) and idf, at a column offset."""

    analyse: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray | None
    sublinear: bool
    norm: str | None
    offset: int


def _blocks(features: Any) -> tuple[list[_Block], int]:
    """The vectorisers of a fitted FeatureUnion (or a single TfidfVectorizer), with their column offsets."""
    vectorisers = [v for _, v in features.transformer_list] if hasattr(features, "transformer_list") else [features]
    blocks, offset = [], 0
    for v in vectorisers:
        idf = getattr(v, "idf_", None) if getattr(v, "use_idf", False) else None
        # Plain ints: numpy integer values would make every lookup of a request box and unbox a scalar.
        vocabulary = {term: int(col) for term, col in v.vocabulary_.items()}
        blocks.append(_Block(v.build_analyzer(), vocabulary, None if idf is None else np.asarray(idf),
                             bool(getattr(v, "sublinear_tf", False)), getattr(v, "norm", None), offset))
        offset += len(v.vocabulary_)
    return blocks, offset


def _row(block: _Block, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Columns and TF-IDF values of one text in one block, as the vectoriser computes them (float32)."""
    counts = Counter(block.analyse(text))
    n = len(counts)
    # One C-level pass each: column of every distinct n-gram (-1 = not in the vocabulary), and its count.
    cols = np.fromiter(map(block.vocabulary.get, counts, repeat(-1, n)), dtype=np.int64, count=n)
    tf = np.fromiter(counts.values(), dtype=np.float32, count=n)
    known = cols >= 0
    cols, tf = cols[known], tf[known]
    if block.sublinear:
        tf = np.log(tf) + np.float32(1.0)
    if block.idf is not None:
        tf = tf * block.idf[cols]
    if block.norm == "l2" and len(tf):
        tf = tf / np.float32(np.sqrt(np.dot(tf, tf)))
    elif block.norm == "l1" and len(tf):
        tf = tf / np.float32(np.abs(tf).sum())
    return cols + block.offset, tf


class FastLinearHeads:
    """TF-IDF features and all linear heads of a fitted baseline, as arrays; `logits` is the whole request path.

    Heads are the category models (C columns) followed by the severity cut-points (L-1 columns, NEVER for a
    cut-point without a model).
    """

    def __init__(self, features: Any, category_models: Sequence[Any], severity_models: Sequence[Any | None],
                 calibrations: Sequence[SigmoidCalibration], severity_temperature: float) -> None:
        self._blocks, self.n_features = _blocks(features)
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

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF matrix (n, F), float32, blocks side by side: the one place a text becomes features."""
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        lengths = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            for block in self._blocks:
                cols, values = _row(block, text)
                indices.append(cols)
                data.append(values)
                lengths[i + 1] += len(cols)
        if not data:
            return sp.csr_matrix((len(texts), self.n_features), dtype=np.float32)
        return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.cumsum(lengths)),
                             shape=(len(texts), self.n_features))

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw decision values (n, H) of every head: one sparse-dense product."""
        x = self.features(texts)
        return np.asarray(x @ self.weights) + self.bias

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated category probabilities (n, C) and severity level probabilities (n, L)."""
        z = self.logits(texts)
        c = self.n_categories
        cats = expit(z[:, :c] / self._temperature + self._shift)
        sev = ordinal_probabilities(z[:, c:], self.severity_temperature)
        return np.asarray(cats), sev
