"""Fit the TF-IDF + linear baseline on examples with partially known labels."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from triage.calibration import (
    SigmoidCalibration,
    decision_thresholds,
    fit_ordinal_temperature,
    fit_sigmoid_temperature,
)
from triage.conformal import fit_routing_points
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.sources import SHIPPED
from triage.metrics import expected_calibration_error
from triage.models.base import ModelCard, WindowSpec
from triage.models.baseline import BaselineClassifier, category_logits, cumulative_logits
from triage.taxonomy import Policy
from triage.text import normalize_all

log = logging.getLogger(__name__)


@dataclass
class BaselineParams:
    """Every knob of the baseline; logged whole to MLflow."""

    word_ngram_max: int = 2
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    max_word_features: int = 50_000
    max_char_features: int = 100_000
    min_df: int = 2
    C: float = 4.0
    severity_C: float = 2.0
    tol: float = 1e-3
    min_positives: int = 3
    min_calibration_labels: int = 10
    n_jobs: int = 2
    seed: int = 13
    # Texts are normalised against obfuscation (triage.text) in training and serving; long ones are scored by
    # their most severe window of `window_size` words.
    normalize: bool = True
    # Positive-unlabelled correction: a row whose source says nothing about a category joins that category's head
    # and calibration as a negative with this weight (0 = unknown rows are left out). Sources that judge one
    # category only (e.g. threats in implicit hate) otherwise teach "looks like that source" instead of the category.
    unknown_negative_weight: float = 0.1
    # The shipped tickets (triage/data/examples) weigh this much more in training than a row of the shared sets:
    # they are nearly all the direct personal threats and everyday ticket texts the data has (measured on
    # validation and the behaviour suite: benchmarks/quality_table.py, README "Quality"). Calibration and the
    # routing points stay on unweighted validation rows.
    shipped_weight: float = 10.0
    window_size: int = 96
    window_stride: int = 64
    max_windows: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.word_ngram_max <= 3:
            raise ValueError(f"word_ngram_max must be 1..3, got {self.word_ngram_max}")
        if not 1 <= self.char_ngram_min <= self.char_ngram_max <= 6:
            raise ValueError(f"char n-gram range must satisfy 1 <= min <= max <= 6, got "
                             f"{self.char_ngram_min}..{self.char_ngram_max}")
        if self.C <= 0 or self.severity_C <= 0:
            raise ValueError("C and severity_C must be positive")
        if self.min_positives < 1:
            raise ValueError("min_positives must be at least 1")
        if self.n_jobs < 1:
            raise ValueError("n_jobs must be at least 1")
        if self.shipped_weight <= 0:
            raise ValueError(f"shipped_weight must be positive, got {self.shipped_weight}")
        if not 0.0 <= self.unknown_negative_weight <= 1.0:
            raise ValueError(f"unknown_negative_weight must be in [0, 1], got {self.unknown_negative_weight}")
        if not 1 <= self.window_stride <= self.window_size or self.max_windows < 1:
            raise ValueError(f"need 1 <= window_stride <= window_size and max_windows >= 1, got "
                             f"{self.window_stride}, {self.window_size}, {self.max_windows}")

    def as_dict(self) -> dict[str, object]:
        """Parameters for logging."""
        return asdict(self)


def tfidf_features(params: BaselineParams) -> FeatureUnion:
    """The word and character TF-IDF blocks every n-gram model uses (unfitted)."""
    common: dict[str, Any] = {"sublinear_tf": True, "min_df": params.min_df, "dtype": np.float32}
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, params.word_ngram_max),
                                     max_features=params.max_word_features, **common)),
            ("char", TfidfVectorizer(analyzer="char_wb",
                                     ngram_range=(params.char_ngram_min, params.char_ngram_max),
                                     max_features=params.max_char_features, **common)),
        ]
    )


def _binary(x: Any, y: np.ndarray, w: np.ndarray, c: float, params: BaselineParams) -> LogisticRegression:
    model = LogisticRegression(C=c, solver="liblinear", tol=params.tol, random_state=params.seed)
    return model.fit(x, y, sample_weight=w)


def _weak(z: np.ndarray, labels: np.ndarray, weights: np.ndarray, unknown_weight: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, w = unknown_as_weak_negative(labels, weights, unknown_weight)
    rows = w > 0
    return z[rows], y[rows], w[rows]


def _enough(labels: np.ndarray, minimum: int) -> bool:
    """A calibration fitted on a handful of labels would be noise: need `minimum` of each class."""
    known = labels[~np.isnan(labels)]
    return bool(np.sum(known == 1) >= minimum and np.sum(known == 0) >= minimum)


def unknown_as_weak_negative(labels: np.ndarray, weights: np.ndarray, unknown_weight: float
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Labels with unknown (NaN) as 0 and their weights scaled by `unknown_weight` (0 drops them)."""
    unknown = np.isnan(labels)
    return np.where(unknown, 0.0, labels), np.where(unknown, weights * unknown_weight, weights)


def fit_linear_heads(
    x: Any, weights: np.ndarray, y: np.ndarray, sev: np.ndarray, policy: Policy, c: float, severity_c: float,
    params: BaselineParams,
) -> tuple[list[str], list[Any], list[Any | None]]:
    """One logistic regression per category (on rows where its label is known) and per severity cut-point.

    `y` (n, C) holds 0/1/NaN in the policy's category order, `sev` the severity rank (-1 unknown). Categories with
    fewer than `params.min_positives` known positives, or no known negative, get no head (left out of the names).
    """
    jobs, names = [], []
    for j, name in enumerate(policy.category_names):
        known = ~np.isnan(y[:, j])
        positives = int(np.nansum(y[known, j]))
        if positives < params.min_positives or positives == known.sum():
            log.info("category %s left out: %d known positives of %d known rows", name, positives, known.sum())
            continue
        names.append(name)
        yj, wj = unknown_as_weak_negative(y[:, j], weights, params.unknown_negative_weight)
        rows = wj > 0
        jobs.append(delayed(_binary)(x[rows], yj[rows].astype(int), wj[rows], c, params))

    known_sev = sev >= 0
    cuts: list[int] = []
    for k in range(len(policy.severity_names) - 1):
        above = sev[known_sev] > k
        if 0 < above.sum() < known_sev.sum():
            cuts.append(k)
            jobs.append(delayed(_binary)(x[known_sev], above.astype(int), weights[known_sev], severity_c, params))
    # liblinear releases the GIL: threads fit the heads in parallel without copying the matrix.
    fitted = Parallel(n_jobs=params.n_jobs, prefer="threads")(jobs)
    by_cut = dict(zip(cuts, fitted[len(names):], strict=True))
    return names, fitted[: len(names)], [by_cut.get(k) for k in range(len(policy.severity_names) - 1)]


def training_weights(train: list[Example], params: BaselineParams) -> np.ndarray:
    """Each training row's weight: its own, times `shipped_weight` for the shipped tickets (when mixed with shared
    data; on the shipped tickets alone a common factor would only loosen the regularisation)."""
    weights = np.array([ex.weight for ex in train], dtype=np.float64)
    shipped = np.array([ex.source == SHIPPED for ex in train], dtype=bool)
    if not shipped.all():
        weights[shipped] *= params.shipped_weight
    return weights


def fit(
    train: list[Example],
    validation: list[Example],
    policy: Policy,
    params: BaselineParams | None = None,
) -> BaselineClassifier:
    """Train per-category models (on rows where the label is known) and ordinal severity; calibrate on validation."""
    params = params or BaselineParams()
    started = time.perf_counter()
    features = tfidf_features(params)
    prepare = normalize_all if params.normalize else list
    x = features.fit_transform(prepare([ex.text for ex in train]))
    weights = training_weights(train, params)
    y = label_matrix(train, policy.category_names)

    names, category_models, severity_models = fit_linear_heads(
        x, weights, y, severity_vector(train, policy.severity_names), policy, params.C, params.severity_C, params)

    # Calibrate and choose thresholds on validation, never on the rows the models were fitted on.
    xv = features.transform(prepare([ex.text for ex in validation]))
    yv = label_matrix(validation, names)
    zv = category_logits(category_models, xv)
    wv = np.array([ex.weight for ex in validation], dtype=np.float64)
    calibrations = [
        fit_sigmoid_temperature(*_weak(zv[:, j], yv[:, j], wv, params.unknown_negative_weight))
        if _enough(yv[:, j], params.min_calibration_labels) else SigmoidCalibration()
        for j in range(len(names))
    ]
    uncalibrated = 1.0 / (1.0 + np.exp(-zv))
    sev_temperature = fit_ordinal_temperature(cumulative_logits(severity_models, xv),
                                              severity_vector(validation, policy.severity_names))
    classifier = BaselineClassifier(features, category_models, calibrations, severity_models, sev_temperature,
                                    ModelCard(kind="baseline", categories=names,
                                              severity_levels=list(policy.severity_names),
                                              policy_name=policy.name, policy_version=policy.version,
                                              policy_digest=policy.digest))
    text_handling = {"normalize": params.normalize,
                     "windows": WindowSpec(params.window_size, params.window_stride, params.max_windows).to_dict()}
    classifier.card.extra = dict(text_handling)
    classifier.card.extra = {
        **text_handling,
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_examples": len(train),
        "features": int(x.shape[1]),
        "validation_ece_before": expected_calibration_error(yv, uncalibrated),
        **fit_card_points(classifier, validation, policy, params.min_positives),
    }
    log.info("baseline fitted on %d examples in %.1fs", len(train), classifier.card.extra["train_seconds"])
    return classifier



def fit_card_points(classifier: BaselineClassifier, validation: list[Example], policy: Policy, min_positives: int
                    ) -> dict[str, Any]:
    """Fit the card's decision thresholds (set in place) and routing points on validation, never on training rows;
    returns the card fields they add (calibration error, precision thresholds, routing points)."""
    names = classifier.card.categories
    yv = label_matrix(validation, names)
    prediction = classifier.predict([ex.text for ex in validation])
    pv = prediction.categories
    classifier.card.thresholds, points = decision_thresholds(
        yv, pv, names, {c: policy.category(c).target_precision for c in names},
        {c: policy.category(c).threshold for c in names}, min_positives,
    )
    return {
        "validation_ece_after": expected_calibration_error(yv, pv),
        "precision_thresholds": points,
        **fit_routing_points(yv, pv, prediction.severity, severity_vector(validation, policy.severity_names), names,
                             classifier.card.thresholds, policy),
    }
