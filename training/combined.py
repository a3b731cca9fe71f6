"""Fit the combined model: n-gram heads and a second view on train, a per-head stacker on validation.

prepare (normalise, featurise) -> fit the n-gram heads -> the second view (the fine-tuned transformer, fitted here or
loaded from `transformer_dir`; or linear heads on the frozen sentence encoder) -> stack on validation (cross-fitted,
so the operating points are set on scores the stacker did not see) -> routing points -> card.

The transformer uses the same validation split for early stopping and calibration as the stacker does for its three
numbers per head; the routing points are set on the stacker's out-of-fold scores.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from training.baseline import BaselineParams, fit_linear_heads, training_weights, unknown_as_weak_negative
from training.embedding_cache import embed_cached
from training.encoder_export import export_sentence_encoder
from triage.calibration import decision_thresholds
from triage.conformal import fit_routing_points
from triage.data.schema import Example, label_matrix, severity_vector
from triage.metrics import expected_calibration_error
from triage.models.base import ModelCard, WindowSpec
from triage.models.combined import (
    KIND,
    CombinedClassifier,
    EncoderView,
    LinearHeads,
    NgramFeatures,
    Stacker,
    TransformerView,
    View,
    cumulative_to_levels,
)
from triage.models.embedding import SentenceEncoder
from triage.models.transformer import TransformerClassifier
from triage.taxonomy import Policy
from triage.text import normalize_all

log = logging.getLogger(__name__)


@dataclass
class CombinedParams(BaselineParams):
    """Every knob of the combined model (the n-gram view's are the baseline's); logged whole to MLflow."""

    # "transformer": the fine-tuned transformer is the second view (measured best: see README, "The combined model on
    # the fine-tuned transformer"); "encoder": linear heads on the frozen sentence encoder (minutes, not about 20).
    second_view: str = "transformer"
    # A saved transformer to use as the second view instead of fitting one (e.g. a registered version, exported);
    # `transformer` overrides TransformerParams fields when one is fitted here.
    transformer_dir: str | None = None
    transformer: dict[str, Any] | None = None
    encoder_C: float = 4.0
    encoder_severity_C: float = 2.0
    encoder_max_length: int = 128
    encoder_source: str | None = None
    window_size: int = 96
    window_stride: int = 64
    max_windows: int = 16
    stack_folds: int = 2
    # The encoder view learns from at most this many training texts (every positive of a category with fewer than
    # `encoder_keep_positives` positives, then a seeded random sample): a 384-dimensional linear head saturates
    # well before 100k rows, and embedding is the slow step of the fit on a CPU.
    encoder_max_train: int = 40_000
    encoder_keep_positives: int = 3_000
    embedding_cache: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoder_C <= 0 or self.encoder_severity_C <= 0:
            raise ValueError("encoder_C and encoder_severity_C must be positive")
        if not 16 <= self.encoder_max_length <= 512:
            raise ValueError(f"encoder_max_length must be 16..512, got {self.encoder_max_length}")
        if not 1 <= self.window_stride <= self.window_size or self.max_windows < 1:
            raise ValueError("need 1 <= window_stride <= window_size and max_windows >= 1")
        if self.encoder_max_train < 100:
            raise ValueError(f"encoder_max_train must be at least 100, got {self.encoder_max_train}")
        if self.stack_folds < 2:
            raise ValueError(f"stack_folds must be at least 2, got {self.stack_folds}")
        if self.second_view not in ("transformer", "encoder"):
            raise ValueError(f"second_view must be 'transformer' or 'encoder', got {self.second_view!r}")
        if self.transformer_dir is not None and self.second_view != "transformer":
            raise ValueError("transformer_dir needs second_view='transformer'")


def _vectorizers(params: CombinedParams) -> NgramFeatures:
    common: dict[str, Any] = {"sublinear_tf": True, "min_df": params.min_df, "dtype": np.float32}
    return NgramFeatures(
        word=TfidfVectorizer(ngram_range=(1, params.word_ngram_max), max_features=params.max_word_features,
                             **common),
        char=TfidfVectorizer(analyzer="char_wb", ngram_range=(params.char_ngram_min, params.char_ngram_max),
                             max_features=params.max_char_features, **common),
    )


def _head_labels(examples: list[Example], names: list[str], policy: Policy) -> np.ndarray:
    """Targets (n, K) of every head: category labels, then 'severity > k' per cut-point (NaN unknown)."""
    y = label_matrix(examples, names)
    sev = severity_vector(examples, policy.severity_names)
    cuts = np.column_stack([np.where(sev < 0, np.nan, (sev > k).astype(np.float64))
                            for k in range(len(policy.severity_names) - 1)])
    return np.hstack([y, cuts])


def _fit_blend(zt: np.ndarray, ze: np.ndarray, y: np.ndarray, minimum: int,
               unknown_weight: float = 0.0) -> tuple[float, float, float]:
    """One head's stacker (a, b, c) on known labels, unknown ones as negatives of weight `unknown_weight`; the plain
    mean of the logits when labels are too few.

    A head the encoder view has no model for (its logits all zero) keeps the n-gram logit as it is: the mean would
    halve it and pull every score towards 0.5.
    """
    if not np.any(ze):
        return 1.0, 0.0, 0.0
    known = ~np.isnan(y)
    yk = y[known]
    minimum = max(minimum, 1)  # both classes are needed to fit
    if yk.sum() < minimum or (1 - yk).sum() < minimum:
        return 0.5, 0.5, 0.0
    target, weight = unknown_as_weak_negative(y, np.ones_like(y), unknown_weight)
    rows = weight > 0
    model = LogisticRegression(C=100.0, solver="lbfgs", max_iter=200)
    model.fit(np.column_stack([zt[rows], ze[rows]]), target[rows].astype(int), sample_weight=weight[rows])
    return float(model.coef_[0, 0]), float(model.coef_[0, 1]), float(model.intercept_[0])


def fit_stacker(zt: np.ndarray, ze: np.ndarray, targets: np.ndarray, minimum: int,
                unknown_weights: np.ndarray | None = None) -> Stacker:
    """Per-head stacker from validation logits (n, K) of both views and head targets (n, K, NaN unknown);
    `unknown_weights` (K,) gives each head's weight of unknown rows as negatives (default: left out)."""
    uw = np.zeros(zt.shape[1]) if unknown_weights is None else unknown_weights
    blends = np.array([_fit_blend(zt[:, k], ze[:, k], targets[:, k], minimum, float(uw[k]))
                       for k in range(zt.shape[1])])
    return Stacker(a=blends[:, 0], b=blends[:, 1], c=blends[:, 2])


def cross_fitted(zt: np.ndarray, ze: np.ndarray, targets: np.ndarray, minimum: int, folds: int,
                 seed: int, unknown_weights: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold stacked probabilities (n, K): each row scored by a stacker fitted on the other folds."""
    fold = np.random.default_rng(seed).integers(0, folds, size=zt.shape[0])
    out = np.zeros_like(zt)
    for f in range(folds):
        held = fold == f
        stacker = fit_stacker(zt[~held], ze[~held], targets[~held], minimum, unknown_weights)
        out[held] = expit(stacker(zt[held], ze[held]))
    return out


def encoder_rows(y: np.ndarray, limit: int, keep_positives: int, seed: int) -> np.ndarray:
    """Indices of the training rows the encoder view learns from: all of them when there are at most `limit`;
    otherwise every positive of a category with fewer than `keep_positives` positives, then a seeded sample."""
    n = y.shape[0]
    if n <= limit:
        return np.arange(n)
    positives = np.nansum(y, axis=0)
    rare = (y[:, positives < keep_positives] == 1).any(axis=1)
    rng = np.random.default_rng(seed)
    rest = rng.permutation(np.flatnonzero(~rare))[: max(0, limit - int(rare.sum()))]
    return np.sort(np.concatenate([np.flatnonzero(rare), rest]))


def _first_window(texts: list[str], size: int) -> list[str]:
    return [" ".join(t.split()[:size]) for t in texts]


def _transformer(train: list[Example], validation: list[Example], policy: Policy,
                 params: CombinedParams) -> TransformerClassifier:
    """The second view's transformer: loaded from `transformer_dir`, or fine-tuned on the same splits."""
    if params.transformer_dir is not None:
        log.info("transformer view from %s", params.transformer_dir)
        return TransformerClassifier.load(params.transformer_dir, threads=params.n_jobs)
    from training import transformer

    return transformer.fit(train, validation, policy, transformer.TransformerParams(**(params.transformer or {})))


def _encoder_view(train_texts: list[str], weights: np.ndarray, y: np.ndarray, sev: np.ndarray, names: list[str],
                  policy: Policy, params: CombinedParams, cache: Path | None) -> EncoderView:
    """Linear heads on the frozen sentence encoder, fitted on (a sample of) the training texts."""
    onnx_model, tokenizer = export_sentence_encoder(params.encoder_source)
    # Training features in batches (fast); validation, which sets the stacker and the routing points, one text at a
    # time exactly as serving embeds.
    bulk = SentenceEncoder(onnx_model, tokenizer, params.encoder_max_length, threads=params.n_jobs,
                           batch_size=SentenceEncoder.BULK_BATCH)
    encoder = SentenceEncoder(onnx_model, tokenizer, params.encoder_max_length, threads=params.n_jobs)
    rows = encoder_rows(y, params.encoder_max_train, params.encoder_keep_positives, params.seed)
    e = embed_cached(bulk, _first_window([train_texts[i] for i in rows], params.window_size), cache)
    enc_names, enc_cat, enc_sev = fit_linear_heads(e, weights[rows], y[rows], sev[rows], policy, params.encoder_C,
                                                   params.encoder_severity_C, params)
    # A category the sample left too few positives for keeps a zero encoder head: its stacker leans on n-grams.
    by_name = dict(zip(enc_names, enc_cat, strict=True))
    heads = LinearHeads.from_models([*(by_name.get(n) for n in names), *enc_sev], e.shape[1], never=0.0)
    log.info("encoder view: %d rows", len(rows))
    return EncoderView(encoder, heads)


def fit(train: list[Example], validation: list[Example], policy: Policy,
        params: CombinedParams | None = None) -> CombinedClassifier:
    """Fit both views on train, stack them on validation, set routing points; the whole combined model."""
    params = params or CombinedParams()
    started = time.perf_counter()
    cache = Path(params.embedding_cache) if params.embedding_cache else None
    train_texts = normalize_all([ex.text for ex in train])
    val_texts = normalize_all([ex.text for ex in validation])
    weights = training_weights(train, params)  # the shipped tickets weigh as in the baseline
    y = label_matrix(train, policy.category_names)
    sev = severity_vector(train, policy.severity_names)

    ngrams = _vectorizers(params)
    x = ngrams.word.fit_transform(train_texts)
    from scipy import sparse

    x = sparse.hstack([x, ngrams.char.fit_transform(train_texts)], format="csr")
    names, cat_models, sev_models = fit_linear_heads(x, weights, y, sev, policy, params.C, params.severity_C, params)
    ngram_heads = LinearHeads.from_models([*cat_models, *sev_models], x.shape[1])
    log.info("n-gram view: %d features, %d heads in %.0f s", x.shape[1], len(names), time.perf_counter() - started)

    view_started = time.perf_counter()
    view: View
    val_first = _first_window(val_texts, params.window_size)
    if params.second_view == "transformer":
        view = TransformerView(_transformer(train, validation, policy, params), tuple(names))
        ze = view.logits(val_first)
    else:
        view = _encoder_view(train_texts, weights, y, sev, names, policy, params, cache)
        ze = view.heads(embed_cached(view.encoder, val_first, cache))
    view_seconds = time.perf_counter() - view_started
    log.info("%s view: fitted and validation scored in %.0f s", view.kind, view_seconds)
    zt = ngram_heads(ngrams(val_texts))
    targets = _head_labels(validation, names, policy)
    # Category heads treat unknown rows as weak negatives, as in training; severity cut-points leave them out.
    unknown_weights = np.r_[np.full(len(names), params.unknown_negative_weight),
                            np.zeros(len(policy.severity_names) - 1)]
    stacker = fit_stacker(zt, ze, targets, params.min_calibration_labels, unknown_weights)
    oof = cross_fitted(zt, ze, targets, params.min_calibration_labels, params.stack_folds, params.seed,
                       unknown_weights)

    windows = WindowSpec(params.window_size, params.window_stride, params.max_windows)
    card = ModelCard(kind=KIND, categories=names, severity_levels=list(policy.severity_names),
                     policy_name=policy.name, policy_version=policy.version, policy_digest=policy.digest)
    classifier = CombinedClassifier(ngrams, ngram_heads, view, stacker, card)
    n_cat = len(names)
    pv, yv = oof[:, :n_cat], targets[:, :n_cat]
    card.thresholds, precision_points = decision_thresholds(
        yv, pv, names, {c: policy.category(c).target_precision for c in names},
        {c: policy.category(c).threshold for c in names}, params.min_positives,
    )
    card.extra = {
        "normalize": True,
        "windows": windows.to_dict(),
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_examples": len(train),
        "features": int(x.shape[1]),
        "second_view": view.kind,
        "second_view_seconds": round(view_seconds, 2),
        "stacker": {"ngrams": stacker.a.round(4).tolist(), view.kind: stacker.b.round(4).tolist()},
        "validation_ece_ngrams": expected_calibration_error(yv, expit(zt[:, :n_cat])),
        "validation_ece_after": expected_calibration_error(yv, pv),
        "precision_thresholds": precision_points,
        **fit_routing_points(yv, pv, cumulative_to_levels(oof[:, n_cat:]),
                         severity_vector(validation, policy.severity_names), names, card.thresholds, policy),
    }
    # The classifier was built before its card held the windows: give it the fitted ones, as `load` will.
    classifier.windows = windows
    log.info("combined model fitted on %d examples in %.0f s", len(train), card.extra["train_seconds"])
    return classifier

