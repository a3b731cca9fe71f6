"""Distil a full model into the n-gram model's form: a cheap model whose scores follow the full model's own.

A cascade trusts its cheap model only where the cheap model's scores say what the full model would decide. The
baseline learnt the labels, not the full model, so its scores, read at the full model's routing points, give the
full model's decision on about 80% of tickets and the cascade had to call the full model for ~90% of them. Here
the cheap model's heads are regressed on the full model's own logits (its calibrated category probabilities and
P(severity > k)) over the training texts: the same TF-IDF features and request path as the baseline, a different
target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression, Ridge

from training.baseline import BaselineParams, fit_card_points, tfidf_features
from triage.calibration import SigmoidCalibration
from triage.data.schema import Example
from triage.models.base import Classifier, ModelCard, Prediction, WindowSpec, predict_in_batches
from triage.models.baseline import BaselineClassifier, LinearHead
from triage.taxonomy import Policy
from triage.text import normalize_all

log = logging.getLogger(__name__)
LOSSES = ("ridge", "logistic")


@dataclass
class DistillParams:
    """Every knob of the distillation; logged whole to MLflow."""

    # "ridge": least squares on the teacher's logits; "logistic": cross-entropy on its probabilities (each text
    # once as a positive weighted p and once as a negative weighted 1 - p), the features' C per head.
    loss: str = "ridge"
    # Ridge penalty on the heads' weights (the features are L2-normalised TF-IDF rows).
    alpha: float = 1.0
    # Teacher probabilities are clipped to [clip, 1 - clip] before the logit: beyond that the decision never turns.
    clip: float = 1e-4
    # At most this many training texts are scored by the teacher (0 = all); drawn at random with `seed`.
    max_texts: int = 0
    batch_size: int = 256
    seed: int = 13
    features: BaselineParams = field(default_factory=BaselineParams)

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if not 0 < self.clip < 0.5:
            raise ValueError(f"clip must be in (0, 0.5), got {self.clip}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.max_texts < 0 or self.batch_size < 1:
            raise ValueError("max_texts must be >= 0 and batch_size >= 1")

    def as_dict(self) -> dict[str, object]:
        """Parameters for logging (the feature parameters flattened with a prefix)."""
        out = {k: v for k, v in asdict(self).items() if k != "features"}
        return {**out, **{f"features.{k}": v for k, v in self.features.as_dict().items()}}


def teacher_targets(prediction: Prediction, clip: float) -> np.ndarray:
    """(n, C + L - 1) regression targets: logits of the category probabilities, then of P(severity > k)."""
    above = np.cumsum(prediction.severity[:, ::-1], axis=1)[:, ::-1][:, 1:]
    probs = np.column_stack([prediction.categories, above])
    return np.asarray(logit(np.clip(probs, clip, 1.0 - clip)), dtype=np.float64)


def _soft_logistic_heads(x: Any, probs: np.ndarray, n_categories: int, params: DistillParams) -> list[LinearHead]:
    """One logistic head per column of `probs`, fitted on soft labels (the categories with C, the cuts with
    severity_C)."""
    n = x.shape[0]
    # In the dtype and index order liblinear wants, so no thread converts the shared matrix in place.
    stacked = sp.vstack([x, x], format="csr", dtype=np.float64)
    stacked.sort_indices()
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    fp = params.features

    def one(j: int) -> LinearHead:
        c = fp.C if j < n_categories else fp.severity_C
        model = LogisticRegression(C=c, solver="liblinear", tol=fp.tol, random_state=params.seed)
        model.fit(stacked, y, sample_weight=np.r_[probs[:, j], 1.0 - probs[:, j]])
        return LinearHead(model.coef_.astype(np.float64), model.intercept_.astype(np.float64))

    # liblinear releases the GIL: threads share the matrix.
    return list(Parallel(n_jobs=fp.n_jobs, prefer="threads")(delayed(one)(j) for j in range(probs.shape[1])))


def fit_student(texts: Sequence[str], targets: np.ndarray, params: DistillParams,
                n_categories: int = 0) -> tuple[Any, list[LinearHead]]:
    """TF-IDF features fitted on `texts` and one head per target column (ridge on logits, or soft logistic: the
    first `n_categories` columns are categories, the rest severity cuts)."""
    features = tfidf_features(params.features)
    prepare = normalize_all if params.features.normalize else list
    x = features.fit_transform(prepare(list(texts)))
    if params.loss == "logistic":
        return features, _soft_logistic_heads(x, expit(targets), n_categories, params)
    ridge = Ridge(alpha=params.alpha, solver="sparse_cg", random_state=params.seed).fit(x, targets)
    coef = np.atleast_2d(ridge.coef_)
    intercept = np.atleast_1d(ridge.intercept_)
    return features, [LinearHead(coef[j:j + 1].astype(np.float64), intercept[j:j + 1].astype(np.float64))
                      for j in range(coef.shape[0])]


def fit(teacher: Classifier, train: Sequence[Example], validation: list[Example], policy: Policy,
        params: DistillParams | None = None, teacher_prediction: Prediction | None = None) -> BaselineClassifier:
    """A baseline-form model whose heads follow `teacher`'s scores on the training texts; thresholds and routing
    points fitted on validation as for any model. `teacher_prediction` (for `train`) skips the teacher's pass."""
    params = params or DistillParams()
    started = time.perf_counter()
    texts = [ex.text for ex in train]
    if params.max_texts and len(texts) > params.max_texts and teacher_prediction is None:
        keep = np.sort(np.random.default_rng(params.seed).choice(len(texts), params.max_texts, replace=False))
        texts = [texts[i] for i in keep]
    clock = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or (done // params.batch_size) % 40 == 0:
            log.info("teacher: %d / %d texts (%.0f/s)", done, total, done / (time.perf_counter() - clock))

    teacher_prediction = teacher_prediction or predict_in_batches(teacher, texts, params.batch_size, progress)
    teacher_seconds = time.perf_counter() - started
    targets = teacher_targets(teacher_prediction, params.clip)
    names = list(teacher.card.categories)
    features, heads = fit_student(texts, targets, params, len(names))
    levels = list(teacher.card.severity_levels)
    card = ModelCard(kind="baseline", categories=names, severity_levels=levels, policy_name=policy.name,
                     policy_version=policy.version, policy_digest=policy.digest)
    student = BaselineClassifier(features, heads[:len(names)], [SigmoidCalibration() for _ in names],
                                 list(heads[len(names):]), 1.0, card)
    fp = params.features
    text_handling = {"normalize": fp.normalize,
                     "windows": WindowSpec(fp.window_size, fp.window_stride, fp.max_windows).to_dict()}
    student.card.extra = {
        **text_handling,
        "distilled_from": teacher.card.kind,
        "teacher_seconds": round(teacher_seconds, 2),
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_examples": len(texts),
        "features": int(sum(len(t.vocabulary_) for _, t in features.transformer_list)),
        **fit_card_points(student, validation, policy, fp.min_positives),
    }
    log.info("distilled a %s model on %d texts in %.1fs (teacher %.1fs)", teacher.card.kind, len(texts),
             student.card.extra["train_seconds"], teacher_seconds)
    return student
